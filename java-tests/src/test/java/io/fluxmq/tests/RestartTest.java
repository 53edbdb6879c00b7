package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/** Data, topics and topic configs survive a clean stop (SIGTERM) and a restart on the same data dir. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RestartTest {

    /** Small (4 MiB) segments so that each partition (~6 MB here) spans several segment files. */
    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create().withArgs("--segment-bytes", "4194304");

    static final String TOPIC = "restart";
    static final int PARTITIONS = 3;
    static final int RECORDS = 45_000;

    @Test
    void dataSurvivesRestart() throws Exception {
        List<TopicPartition> tps = TestRecords.partitions(TOPIC, PARTITIONS);
        List<TestRecords.Sent> sent;
        try (Admin admin = broker.admin()) {
            admin.createTopics(List.of(new NewTopic(TOPIC, PARTITIONS, (short) 1)
                    .configs(Map.of("retention.ms", "86400000")))).all().get(30, TimeUnit.SECONDS);
        }
        TestRecords.awaitPartitionsReady(broker, TOPIC, PARTITIONS);
        // A topic that is grown, and one that is deleted, before the restart.
        try (Admin admin = broker.admin()) {
            TestRecords.createTopic(broker, admin, "restart-grown", 1);
            admin.createPartitions(Map.of("restart-grown", NewPartitions.increaseTo(4))).all().get(30, TimeUnit.SECONDS);
            TestRecords.createTopic(broker, admin, "restart-deleted", 2);
            admin.deleteTopics(List.of("restart-deleted")).all().get(30, TimeUnit.SECONDS);
        }
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < RECORDS; i++) {
            records.add(TestRecords.record(TOPIC, i % PARTITIONS, "restart", i));
        }
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.ACKS_CONFIG, "all", ProducerConfig.COMPRESSION_TYPE_CONFIG, "none"))) {
            sent = TestRecords.sendAll(producer, records);
        }

        // The exit code is checked at the end, so that data survival is reported either way.
        int exit1 = broker.stop();
        broker.start();

        try (Admin admin = broker.admin()) {
            Set<String> names = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            assertTrue(names.contains(TOPIC), "topic after restart: " + names);
            assertTrue(names.contains("restart-grown"), "grown topic after restart: " + names);
            assertFalse(names.contains("restart-deleted"), "a topic deleted before the restart came back: " + names);
            assertEquals(4, admin.describeTopics(List.of("restart-grown")).allTopicNames().get(30, TimeUnit.SECONDS)
                    .get("restart-grown").partitions().size(), "partition count of the grown topic after restart");
            TopicDescription d = admin.describeTopics(List.of(TOPIC)).allTopicNames().get(30, TimeUnit.SECONDS)
                    .get(TOPIC);
            assertEquals(PARTITIONS, d.partitions().size(), "partition count after restart");
            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, TOPIC);
            Config cfg = admin.describeConfigs(List.of(res)).all().get(30, TimeUnit.SECONDS).get(res);
            assertNotNull(cfg.get("retention.ms"), "retention.ms after restart");
            assertEquals("86400000", cfg.get("retention.ms").value(), "topic config after restart");
        }

        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, Duration.ofSeconds(15));
            for (TopicPartition tp : tps) {
                assertEquals((long) RECORDS / PARTITIONS, end.get(tp), "end offset after restart of " + tp);
            }
            List<ConsumerRecord<byte[], byte[]>> got =
                    TestRecords.consumeAll(consumer, tps, RECORDS, Duration.ofSeconds(60));
            TestRecords.verify(TOPIC, sent, got, TestRecords.zeros());
        }

        // Appends after the restart continue the offsets, and old + new data read back together.
        List<ProducerRecord<byte[], byte[]>> more = new ArrayList<>();
        for (int i = RECORDS; i < RECORDS + 600; i++) {
            more.add(TestRecords.record(TOPIC, i % PARTITIONS, "restart", i));
        }
        List<TestRecords.Sent> sent2;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4"))) {
            sent2 = TestRecords.sendAll(producer, more);
        }
        for (TestRecords.Sent s : sent2) {
            assertTrue(s.metadata.offset() >= RECORDS / PARTITIONS, "offset " + s.metadata.offset()
                    + " after restart overlaps data written before the restart");
        }
        List<TestRecords.Sent> all = new ArrayList<>(sent);
        all.addAll(sent2);
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            List<ConsumerRecord<byte[], byte[]>> got =
                    TestRecords.consumeAll(consumer, tps, all.size(), Duration.ofSeconds(60));
            TestRecords.verify(TOPIC, all, got, new HashMap<>());
        }

        // A second restart right after writing (no idle time for background flushing).
        int exit2 = broker.restart();
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            List<ConsumerRecord<byte[], byte[]>> got =
                    TestRecords.consumeAll(consumer, tps, all.size(), Duration.ofSeconds(60));
            TestRecords.verify(TOPIC, all, got, new HashMap<>());
        }

        assertEquals(0, exit1, "broker exit code after the first SIGTERM (a clean shutdown exits 0)");
        assertEquals(0, exit2, "broker exit code after the second SIGTERM (a clean shutdown exits 0)");
    }
}
