package io.fluxmq.tests;

import org.junit.jupiter.api.extension.RegisterExtension;

/** Consumer groups with the classic protocol (JoinGroup/SyncGroup/Heartbeat/LeaveGroup). */
class GroupClassicTest extends GroupScenarios {
    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create().withArgs(BROKER_ARGS);

    @Override
    FluxmqBroker broker() {
        return broker;
    }

    @Override
    String protocol() {
        return "classic";
    }

    /** The cooperative-sticky assignor (assignment is client-side in the classic protocol). */
    @Override
    String[] stickyProperties() {
        return new String[] {
            "partition.assignment.strategy=org.apache.kafka.clients.consumer.CooperativeStickyAssignor"
        };
    }
}
