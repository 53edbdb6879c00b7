package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.junit.jupiter.api.Test;

/**
 * Consumer-group scenarios run once per group protocol (classic and KIP-848 "consumer"): members are
 * separate JVMs ({@link GroupMember}) so they can be killed for real.
 *
 * <p>The broker runs with short group timers (see the subclasses) so that a killed member's session
 * expires in seconds: {@value #SESSION_TIMEOUT_MS} ms.
 */
abstract class GroupScenarios {
    static final int PARTITIONS = 6;
    static final int SESSION_TIMEOUT_MS = 6_000;
    /** What the broker is started with for KIP-848 groups and what classic members ask for. */
    static final String[] BROKER_ARGS = {
        "--group-initial-rebalance-delay-ms", "300",
        "--group-consumer-heartbeat-interval-ms", "500",
        "--group-consumer-session-timeout-ms", Integer.toString(SESSION_TIMEOUT_MS),
    };

    abstract FluxmqBroker broker();

    /** "classic" or "consumer". */
    abstract String protocol();

    /** Member properties for this protocol. */
    String[] memberProperties(String... extra) {
        List<String> properties = new ArrayList<>();
        properties.add("group.protocol=" + protocol());
        if (protocol().equals("classic")) {
            properties.add("session.timeout.ms=" + SESSION_TIMEOUT_MS);
            properties.add("heartbeat.interval.ms=500");
        }
        properties.addAll(Arrays.asList(extra));
        return properties.toArray(String[]::new);
    }

    void createTopic(String topic) throws Exception {
        try (Admin admin = broker().admin()) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get();
        }
    }

    /** Produces {@code count} records with values {@code prefix-<i>}, spread over every partition. */
    void produce(String topic, String prefix, int count) throws Exception {
        try (KafkaProducer<byte[], byte[]> producer = broker().producer(Map.of())) {
            for (int i = 0; i < count; i++) {
                byte[] value = (prefix + "-" + i).getBytes();
                producer.send(new ProducerRecord<>(topic, i % PARTITIONS, null, value));
            }
            producer.flush();
        }
    }

    GroupMemberProcess member(String name, String group, String topic, String... extra) throws Exception {
        return GroupMemberProcess.start(name, broker().bootstrap(), group, topic, memberProperties(extra));
    }

    static void waitUntil(Duration timeout, String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                fail("timed out after " + timeout.toMillis() + " ms waiting for: " + what);
            }
            Thread.sleep(20);
        }
    }

    /** Every partition owned by exactly one of the live members, and each of them owns at least one. */
    static boolean balanced(List<GroupMemberProcess> members) {
        Set<Integer> seen = new HashSet<>();
        int total = 0;
        for (GroupMemberProcess member : members) {
            Set<Integer> owned = member.assignment();
            if (owned.isEmpty()) {
                return false;
            }
            seen.addAll(owned);
            total += owned.size();
        }
        return seen.size() == PARTITIONS && total == PARTITIONS;
    }

    static List<GroupMemberProcess.Committed> committed(List<GroupMemberProcess> members) {
        List<GroupMemberProcess.Committed> all = new ArrayList<>();
        for (GroupMemberProcess member : members) {
            all.addAll(member.committed());
        }
        return all;
    }

    /** Every value in {@code expected} consumed-and-committed once, none twice. */
    static void assertExactlyOnce(List<GroupMemberProcess.Committed> committed, Set<String> expected) {
        Map<String, Integer> counts = new HashMap<>();
        for (GroupMemberProcess.Committed record : committed) {
            counts.merge(record.value(), 1, Integer::sum);
        }
        List<String> duplicates = counts.entrySet().stream().filter(entry -> entry.getValue() > 1)
                .map(Map.Entry::getKey).sorted().limit(10).collect(Collectors.toList());
        assertTrue(duplicates.isEmpty(), "records committed more than once: " + duplicates);
        Set<String> missing = new TreeSet<>(expected);
        missing.removeAll(counts.keySet());
        assertTrue(missing.isEmpty(), missing.size() + " records never committed, e.g. "
                + missing.stream().limit(10).collect(Collectors.toList()));
        assertEquals(expected.size(), counts.size(), "unexpected records consumed");
    }

    static Set<String> values(String prefix, int count) {
        Set<String> values = new HashSet<>();
        for (int i = 0; i < count; i++) {
            values.add(prefix + "-" + i);
        }
        return values;
    }

    /**
     * Three members share a 6-partition topic; one is killed (SIGKILL) and the others take it over
     * within the session timeout; another leaves cleanly; a restarted member resumes from the committed
     * offsets. Every record is consumed-and-committed exactly once across those rebalances.
     */
    @Test
    void threeMembersShareTakeOverAndResume() throws Exception {
        String topic = "share-" + protocol();
        String group = "share-group-" + protocol();
        createTopic(topic);
        produce(topic, "a", 3_000);
        List<GroupMemberProcess> all = new ArrayList<>();
        try {
            GroupMemberProcess first = member("m1", group, topic);
            GroupMemberProcess second = member("m2", group, topic);
            all.add(first);
            all.add(second);
            waitUntil(Duration.ofSeconds(30), "two members balanced", () -> balanced(List.of(first, second)));
            GroupMemberProcess third = member("m3", group, topic);
            all.add(third);
            long thirdStarted = System.nanoTime();
            waitUntil(Duration.ofSeconds(30), "three members balanced", () -> balanced(List.of(first, second, third)));
            long rebalanceMs = (System.nanoTime() - thirdStarted) / 1_000_000;
            System.out.printf("[%s] third member start (incl. JVM start) to balanced 3-member assignment: %d ms%n",
                    protocol(), rebalanceMs);
            waitUntil(Duration.ofSeconds(60), "first 3000 records committed", () -> committed(all).size() >= 3_000);

            // A crash: the member's session must expire and the others take over its partitions.
            long killed = System.nanoTime();
            third.kill();
            waitUntil(Duration.ofMillis(SESSION_TIMEOUT_MS + 10_000), "two survivors own every partition",
                    () -> balanced(List.of(first, second)));
            long takeoverMs = (System.nanoTime() - killed) / 1_000_000;
            System.out.printf("[%s] kill -9 of a member to survivors owning all partitions: %d ms%n", protocol(), takeoverMs);

            // A clean leave: the last member takes everything at once.
            long left = System.nanoTime();
            second.stop();
            waitUntil(Duration.ofSeconds(15), "the last member owns every partition", () -> balanced(List.of(first)));
            System.out.printf("[%s] clean leave to last member owning all partitions: %d ms%n", protocol(),
                    (System.nanoTime() - left) / 1_000_000);
            produce(topic, "b", 3_000);
            Set<String> expected = values("a", 3_000);
            expected.addAll(values("b", 3_000));
            waitUntil(Duration.ofSeconds(60), "6000 records committed", () -> committed(all).size() >= 6_000);
            first.stop();
            assertExactlyOnce(committed(all), expected);

            // A restarted member resumes from the committed offsets: it sees only new records.
            produce(topic, "c", 600);
            GroupMemberProcess restarted = member("m4", group, topic);
            all.add(restarted);
            waitUntil(Duration.ofSeconds(60), "the restarted member commits the 600 new records",
                    () -> restarted.committed().size() >= 600);
            Thread.sleep(500);
            restarted.stop();
            assertExactlyOnce(restarted.committed(), values("c", 600));
            expected.addAll(values("c", 600));
            assertExactlyOnce(committed(all), expected);
        } finally {
            for (GroupMemberProcess member : all) {
                member.close();
            }
        }
    }

    /** A static member (group.instance.id) that restarts within the session timeout gets its partitions
     * back, and the other member sees no rebalance. */
    @Test
    void staticMemberRejoinsWithoutRebalance() throws Exception {
        String topic = "static-" + protocol();
        String group = "static-group-" + protocol();
        createTopic(topic);
        List<GroupMemberProcess> all = new ArrayList<>();
        try {
            GroupMemberProcess steady = member("s1", group, topic, "group.instance.id=instance-1");
            GroupMemberProcess bouncing = member("s2", group, topic, "group.instance.id=instance-2");
            all.add(steady);
            all.add(bouncing);
            waitUntil(Duration.ofSeconds(30), "two static members balanced", () -> balanced(List.of(steady, bouncing)));
            Set<Integer> before = new TreeSet<>(bouncing.assignment());
            int steadyCallbacks = steady.lines("A").size() + steady.lines("R").size();
            bounce(bouncing);
            GroupMemberProcess back = member("s2b", group, topic, "group.instance.id=instance-2");
            all.add(back);
            waitUntil(Duration.ofSeconds(30), "the returning static member owns partitions",
                    () -> !back.assignment().isEmpty());
            assertEquals(before, back.assignment(), "the static member should get its partitions back");
            // Give a (wrong) rebalance time to show up before checking that none happened.
            Thread.sleep(2_000);
            assertEquals(steadyCallbacks, steady.lines("A").size() + steady.lines("R").size(),
                    "the other member saw a rebalance: " + steady.lines("A") + " " + steady.lines("R"));
            assertTrue(balanced(List.of(steady, back)));
        } finally {
            for (GroupMemberProcess member : all) {
                member.close();
            }
        }
    }

    /** How a static member goes away before coming back: a crash by default. */
    void bounce(GroupMemberProcess member) throws Exception {
        member.kill();
    }

    /** AdminClient: list, describe, list offsets, alter offsets, delete offsets, delete the group. */
    @Test
    void adminManagesGroupsAndOffsets() throws Exception {
        String topic = "admin-" + protocol();
        String group = "admin-group-" + protocol();
        createTopic(topic);
        produce(topic, "x", 600);
        GroupType type = protocol().equals("classic") ? GroupType.CLASSIC : GroupType.CONSUMER;
        try (Admin admin = broker().admin(); GroupMemberProcess member = member("admin-m1", group, topic)) {
            waitUntil(Duration.ofSeconds(60), "600 records committed", () -> member.committed().size() >= 600);
            waitUntil(Duration.ofSeconds(30), "the group listed",
                    () -> listed(admin).stream().anyMatch(listing -> listing.groupId().equals(group)));
            ConsumerGroupListing listing = listed(admin).stream().filter(l -> l.groupId().equals(group)).findFirst()
                    .orElseThrow();
            assertEquals(type, listing.type().orElseThrow());
            waitUntil(Duration.ofSeconds(30), "the group described as stable with one member", () -> {
                ConsumerGroupDescription description = describe(admin, group);
                return description.groupState().toString().equalsIgnoreCase("Stable")
                        && description.members().size() == 1
                        && description.members().iterator().next().assignment().topicPartitions().size() == PARTITIONS;
            });
            ConsumerGroupDescription description = describe(admin, group);
            assertEquals(type, description.type());
            MemberDescription described = description.members().iterator().next();
            assertEquals("admin-m1", described.clientId());
            assertTrue(described.host().contains("127.0.0.1"), described.host());

            Map<TopicPartition, OffsetAndMetadata> offsets =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            assertEquals(PARTITIONS, offsets.size());
            for (Map.Entry<TopicPartition, OffsetAndMetadata> entry : offsets.entrySet()) {
                assertEquals(100, entry.getValue().offset(), entry.getKey().toString());
                assertEquals("by " + group, entry.getValue().metadata());
            }
            // The group is active: deleting it must fail.
            ExecutionException notEmpty = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> admin.deleteConsumerGroups(List.of(group)).all().get());
            assertTrue(notEmpty.getCause() instanceof GroupNotEmptyException, notEmpty.toString());

            member.stop();
            waitUntil(Duration.ofSeconds(30), "the group is empty",
                    () -> describe(admin, group).members().isEmpty());
            TopicPartition zero = new TopicPartition(topic, 0);
            TopicPartition one = new TopicPartition(topic, 1);
            admin.alterConsumerGroupOffsets(group, Map.of(zero, new OffsetAndMetadata(7, "rewound"))).all().get();
            Map<TopicPartition, OffsetAndMetadata> altered =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            assertEquals(7, altered.get(zero).offset());
            assertEquals("rewound", altered.get(zero).metadata());
            admin.deleteConsumerGroupOffsets(group, Set.of(one)).all().get();
            Map<TopicPartition, OffsetAndMetadata> afterDelete =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            assertFalse(afterDelete.containsKey(one) && afterDelete.get(one) != null, afterDelete.toString());
            assertEquals(PARTITIONS - 1, afterDelete.values().stream().filter(v -> v != null).count());

            admin.deleteConsumerGroups(List.of(group)).all().get();
            assertFalse(listed(admin).stream().anyMatch(l -> l.groupId().equals(group)));
            ExecutionException gone = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class,
                    () -> admin.deleteConsumerGroups(List.of(group)).all().get());
            assertTrue(gone.getCause() instanceof GroupIdNotFoundException, gone.toString());
        }
    }

    @SuppressWarnings("deprecation")
    static List<ConsumerGroupListing> listed(Admin admin) {
        try {
            return new ArrayList<>(admin.listConsumerGroups().all().get());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    static ConsumerGroupDescription describe(Admin admin, String group) {
        try {
            return admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    static Map<String, Object> config(String key, Object value) {
        Map<String, Object> config = new HashMap<>();
        config.put(key, value);
        return config;
    }

    static final String GROUP_PROTOCOL = ConsumerConfig.GROUP_PROTOCOL_CONFIG;
}
