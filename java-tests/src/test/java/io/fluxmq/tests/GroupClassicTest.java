package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.junit.jupiter.api.Test;
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

    /** With the cooperative-sticky assignor, a joining member takes partitions without the others
     * giving up the ones they keep: nothing they keep is ever revoked. */
    @Test
    void cooperativeStickyKeepsUnaffectedPartitions() throws Exception {
        String topic = "sticky";
        String group = "sticky-group";
        createTopic(topic);
        String assignor = "partition.assignment.strategy=org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
        List<GroupMemberProcess> all = new ArrayList<>();
        try {
            GroupMemberProcess first = member("c1", group, topic, assignor);
            GroupMemberProcess second = member("c2", group, topic, assignor);
            all.add(first);
            all.add(second);
            waitUntil(Duration.ofSeconds(30), "two members balanced", () -> balanced(List.of(first, second)));
            Set<Integer> firstBefore = new TreeSet<>(first.assignment());
            Set<Integer> secondBefore = new TreeSet<>(second.assignment());
            int firstRevocations = first.lines("R").size();
            int secondRevocations = second.lines("R").size();
            GroupMemberProcess third = member("c3", group, topic, assignor);
            all.add(third);
            waitUntil(Duration.ofSeconds(30), "three members balanced", () -> balanced(List.of(first, second, third)));
            assertTrue(firstBefore.containsAll(first.assignment()), "c1 gained partitions it did not own");
            assertTrue(secondBefore.containsAll(second.assignment()), "c2 gained partitions it did not own");
            // Each revocation callback after the join names only partitions that moved to the new member.
            for (GroupMemberProcess member : List.of(first, second)) {
                int since = member == first ? firstRevocations : secondRevocations;
                List<String> revocations = member.lines("R");
                for (String line : revocations.subList(since, revocations.size())) {
                    String list = line.length() > 2 ? line.substring(2) : "";
                    for (String partition : list.isEmpty() ? new String[0] : list.split(",")) {
                        assertTrue(third.assignment().contains(Integer.parseInt(partition)),
                                member.name + " revoked partition " + partition + " that did not move: " + revocations);
                    }
                }
            }
            assertEquals(PARTITIONS, first.assignment().size() + second.assignment().size() + third.assignment().size());
        } finally {
            for (GroupMemberProcess member : all) {
                member.close();
            }
        }
    }
}
