package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AdminTest {

    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create();

    static Admin admin;

    @BeforeAll
    static void setUp() {
        admin = broker.admin();
    }

    @AfterAll
    static void tearDown() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
    }

    private static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        return f.get(30, TimeUnit.SECONDS);
    }

    private static Set<String> topicNames() throws Exception {
        return get(admin.listTopics().names());
    }

    private static TopicDescription describe(String topic) throws Exception {
        return get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
    }

    private static Config topicConfig(String topic) throws Exception {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return get(admin.describeConfigs(List.of(res)).all()).get(res);
    }

    /** Unwraps the ExecutionException of a failed admin future. */
    private static Throwable failureOf(org.apache.kafka.common.KafkaFuture<?> f) {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(30, TimeUnit.SECONDS));
        return e.getCause();
    }

    @Test
    void createListDescribeTopic() throws Exception {
        String topic = "admin-created";
        CreateTopicsResult result = admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1)));
        get(result.all());
        assertEquals(3, get(result.numPartitions(topic)), "CreateTopicsResult.numPartitions");
        assertEquals(1, get(result.replicationFactor(topic)), "CreateTopicsResult.replicationFactor");
        TestRecords.awaitPartitionsReady(broker, topic, 3);

        assertTrue(topicNames().contains(topic), "listTopics after createTopics: " + topicNames());

        TopicDescription d = describe(topic);
        assertEquals(topic, d.name());
        assertFalse(d.isInternal());
        assertNotNull(d.topicId(), "topic id");
        assertEquals(3, d.partitions().size(), "partition count: " + d);
        for (int p = 0; p < 3; p++) {
            TopicPartitionInfo info = d.partitions().get(p);
            assertEquals(p, info.partition(), "partitions must be listed in order: " + d);
            assertNotNull(info.leader(), "leader of partition " + p);
            assertEquals(0, info.leader().id(), "leader of partition " + p + " must be node 0");
            assertEquals(List.of(0), info.replicas().stream().map(Node::id).collect(Collectors.toList()),
                    "replicas of partition " + p);
            assertEquals(List.of(0), info.isr().stream().map(Node::id).collect(Collectors.toList()),
                    "ISR of partition " + p);
        }
    }

    @Test
    void createTopicWithConfigIsReturnedByDescribeConfigs() throws Exception {
        String topic = "admin-with-config";
        TestRecords.createTopic(broker, admin, new NewTopic(topic, 1, (short) 1)
                .configs(Map.of("retention.ms", "3600000", "segment.bytes", "2097152")));
        Config cfg = topicConfig(topic);
        ConfigEntry retention = cfg.get("retention.ms");
        assertNotNull(retention, "retention.ms missing from describeConfigs: " + cfg);
        assertEquals("3600000", retention.value(), "retention.ms");
        ConfigEntry segment = cfg.get("segment.bytes");
        assertNotNull(segment, "segment.bytes missing from describeConfigs: " + cfg);
        assertEquals("2097152", segment.value(), "segment.bytes");
    }

    /** A topic-level override is reported as such (kafka-configs --describe and UIs rely on the source). */
    @Test
    void describeConfigsReportsOverrideSource() throws Exception {
        String topic = "admin-config-source";
        TestRecords.createTopic(broker, admin, new NewTopic(topic, 1, (short) 1)
                .configs(Map.of("retention.ms", "7200000")));
        Config cfg = topicConfig(topic);
        ConfigEntry retention = cfg.get("retention.ms");
        assertNotNull(retention, "retention.ms missing: " + cfg);
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source(),
                "source of an explicitly set topic config: " + retention);
        ConfigEntry cleanup = cfg.get("cleanup.policy");
        assertNotNull(cleanup, "cleanup.policy missing: " + cfg);
        assertTrue(cleanup.source() != ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                "a config that was not set must not be reported as a topic override: " + cleanup);
    }

    @Test
    void describeConfigsHasDefaults() throws Exception {
        String topic = "admin-defaults";
        TestRecords.createTopic(broker, admin, topic, 1);
        Config cfg = topicConfig(topic);
        for (String name : List.of("cleanup.policy", "retention.ms", "segment.bytes", "max.message.bytes",
                "message.timestamp.type")) {
            assertNotNull(cfg.get(name), name + " missing from describeConfigs; got: "
                    + cfg.entries().stream().map(ConfigEntry::name).sorted().collect(Collectors.toList()));
            assertNotNull(cfg.get(name).value(), name + " has a null value");
        }
        assertEquals("delete", cfg.get("cleanup.policy").value(), "default cleanup.policy");
        assertEquals("CreateTime", cfg.get("message.timestamp.type").value(), "default message.timestamp.type");
        long retention = Long.parseLong(cfg.get("retention.ms").value());
        assertTrue(retention == -1 || retention > 0, "retention.ms = " + retention);
        assertTrue(Long.parseLong(cfg.get("segment.bytes").value()) > 0, "segment.bytes");
        assertTrue(Integer.parseInt(cfg.get("max.message.bytes").value()) > 0, "max.message.bytes");
    }

    @Test
    void describeConfigsOfUnknownTopicFails() {
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, "no-such-topic-for-configs");
        Throwable t = failureOf(admin.describeConfigs(List.of(res)).all());
        assertInstanceOf(UnknownTopicOrPartitionException.class, t, "describeConfigs of a missing topic: " + t);
    }

    @Test
    void validateOnlyDoesNotCreate() throws Exception {
        String topic = "admin-validate-only";
        get(admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1).configs(Map.of("retention.ms", "60000"))),
                new CreateTopicsOptions().validateOnly(true)).all());
        assertFalse(topicNames().contains(topic), "validateOnly=true must not create the topic");
        // ...and it can then really be created.
        TestRecords.createTopic(broker, admin, topic, 4);
        assertEquals(4, describe(topic).partitions().size());
    }

    @Test
    void validateOnlyStillRejectsInvalidName() {
        Throwable t = failureOf(admin.createTopics(List.of(new NewTopic("bad name!", 1, (short) 1)),
                new CreateTopicsOptions().validateOnly(true)).all());
        assertInstanceOf(InvalidTopicException.class, t, "validateOnly with an invalid name: " + t);
    }

    @Test
    void createExistingTopicFails() throws Exception {
        String topic = "admin-exists";
        TestRecords.createTopic(broker, admin, topic, 2);
        Throwable t = failureOf(admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all());
        assertInstanceOf(TopicExistsException.class, t, "second createTopics of the same name: " + t);
        assertEquals(2, describe(topic).partitions().size(), "the existing topic must be unchanged");
    }

    static Stream<String> invalidTopicNames() {
        return Stream.of("bad name!", "..", ".", "slash/topic", "a".repeat(250));
    }

    @ParameterizedTest(name = "\"{0}\"")
    @MethodSource("invalidTopicNames")
    void invalidTopicNameFails(String name) throws Exception {
        Throwable t = failureOf(admin.createTopics(List.of(new NewTopic(name, 1, (short) 1))).all());
        assertInstanceOf(InvalidTopicException.class, t, "createTopics(\"" + name + "\") (length "
                + name.length() + "): " + t);
        assertFalse(topicNames().contains(name), "invalid topic must not be created");
    }

    @Test
    void createPartitionsIncreasesCountAndNewPartitionIsUsable() throws Exception {
        String topic = "admin-grow";
        TestRecords.createTopic(broker, admin, topic, 2);
        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all());

        TopicDescription d = describe(topic);
        assertEquals(5, d.partitions().size(), "partition count after createPartitions: " + d);
        for (TopicPartitionInfo info : d.partitions()) {
            assertNotNull(info.leader(), "leader of new partition " + info.partition());
            assertEquals(0, info.leader().id(), "leader of partition " + info.partition());
        }
        TestRecords.awaitPartitionsReady(broker, topic, 5);

        RecordMetadata md;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of())) {
            md = producer.send(new ProducerRecord<>(topic, 4, "k4".getBytes(StandardCharsets.UTF_8),
                    "v4".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
        }
        assertEquals(4, md.partition());
        assertEquals(0L, md.offset(), "first offset of a new partition");
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            List<ConsumerRecord<byte[], byte[]>> got = TestRecords.consumeAll(consumer,
                    List.of(new TopicPartition(topic, 4)), 1, Duration.ofSeconds(30));
            assertEquals(1, got.size());
            assertArrayEquals("v4".getBytes(StandardCharsets.UTF_8), got.get(0).value());
        }
    }

    @Test
    void createPartitionsCannotShrink() throws Exception {
        String topic = "admin-no-shrink";
        TestRecords.createTopic(broker, admin, topic, 3);
        Throwable t = failureOf(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all());
        assertInstanceOf(InvalidPartitionsException.class, t, "decreasing the partition count: " + t);
        assertEquals(3, describe(topic).partitions().size());
    }

    @Test
    void deleteTopicRemovesIt() throws Exception {
        String topic = "admin-delete-me";
        TestRecords.createTopic(broker, admin, topic, 2);
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of())) {
            producer.send(new ProducerRecord<>(topic, 1, null, "x".getBytes(StandardCharsets.UTF_8)))
                    .get(30, TimeUnit.SECONDS);
        }
        assertTrue(topicNames().contains(topic));
        get(admin.deleteTopics(List.of(topic)).all());

        // Deletion may complete asynchronously, as in Kafka; give it a few seconds.
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        Set<String> names = topicNames();
        while (names.contains(topic) && System.nanoTime() < deadline) {
            Thread.sleep(100);
            names = topicNames();
        }
        assertFalse(names.contains(topic), "listTopics after deleteTopics still shows it: " + names);
        Throwable t = failureOf(admin.describeTopics(List.of(topic)).allTopicNames());
        assertInstanceOf(UnknownTopicOrPartitionException.class, t, "describeTopics of a deleted topic: " + t);
    }

    /** A topic deleted and created again under the same name starts empty, with a new topic id. */
    @Test
    void deleteThenRecreateStartsEmpty() throws Exception {
        String topic = "admin-recreate";
        TestRecords.createTopic(broker, admin, topic, 2);
        Uuid oldId = describe(topic).topicId();
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of())) {
            for (int i = 0; i < 50; i++) {
                producer.send(new ProducerRecord<>(topic, i % 2, null, ("old-" + i).getBytes(StandardCharsets.UTF_8)));
            }
            producer.flush();
        }
        get(admin.deleteTopics(List.of(topic)).all());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (topicNames().contains(topic) && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        TestRecords.createTopic(broker, admin, topic, 3);
        TopicDescription d = describe(topic);
        assertEquals(3, d.partitions().size(), "partitions of the re-created topic");
        assertNotEquals(oldId, d.topicId(), "re-created topic must get a new topic id, got the old one " + oldId);

        List<TopicPartition> tps = TestRecords.partitions(topic, 3);
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of())) {
            RecordMetadata md = producer.send(new ProducerRecord<>(topic, 1, null,
                    "new".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
            assertEquals(0L, md.offset(), "first offset in a re-created topic");
        }
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, Duration.ofSeconds(15));
            assertEquals(Map.of(tps.get(0), 0L, tps.get(1), 1L, tps.get(2), 0L), end, "end offsets after re-create");
            List<ConsumerRecord<byte[], byte[]>> got = TestRecords.consumeAll(consumer, tps, 1, Duration.ofSeconds(15));
            assertEquals(1, got.size(), "records in the re-created topic: " + got);
            assertArrayEquals("new".getBytes(StandardCharsets.UTF_8), got.get(0).value());
        }
    }

    @Test
    void deleteUnknownTopicFails() {
        Throwable t = failureOf(admin.deleteTopics(List.of("admin-never-existed")).all());
        assertInstanceOf(UnknownTopicOrPartitionException.class, t, "deleteTopics of a missing topic: " + t);
    }

    @Test
    void describeCluster() throws Exception {
        DescribeClusterResult r = admin.describeCluster();
        Collection<Node> nodes = get(r.nodes());
        assertEquals(1, nodes.size(), "nodes: " + nodes);
        Node n = nodes.iterator().next();
        assertEquals(0, n.id(), "node id");
        assertEquals(FluxmqBroker.HOST, n.host(), "advertised host");
        assertEquals(broker.port(), n.port(), "advertised port");
        String clusterId = get(r.clusterId());
        assertNotNull(clusterId, "cluster id");
        assertFalse(clusterId.isBlank(), "cluster id");
        Node controller = get(r.controller());
        assertNotNull(controller, "controller");
        assertEquals(0, controller.id(), "controller id");
        // Stable across calls.
        assertEquals(clusterId, get(admin.describeCluster().clusterId()), "cluster id must be stable");
    }
}
