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
}
