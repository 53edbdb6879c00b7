package io.fluxmq.tests;

import org.junit.jupiter.api.extension.RegisterExtension;

/** Consumer groups with the KIP-848 protocol (group.protocol=consumer, ConsumerGroupHeartbeat). */
class GroupConsumerProtocolTest extends GroupScenarios {
    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create().withArgs(BROKER_ARGS);

    @Override
    FluxmqBroker broker() {
        return broker;
    }

    @Override
    String protocol() {
        return "consumer";
    }

    /**
     * KIP-848 static members step away with a clean close (member epoch -2, which keeps their
     * partitions). After a crash the old member still holds the instance id until its session expires,
     * and Kafka (like FluxMQ) answers a new member with that id UNRELEASED_INSTANCE_ID.
     */
    @Override
    void bounce(GroupMemberProcess member) throws Exception {
        member.stop();
    }
}
