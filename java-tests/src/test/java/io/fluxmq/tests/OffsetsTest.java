package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.consumer.OffsetOutOfRangeException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** ListOffsets: offsetsForTimes (record precision inside batches), beginning/end offsets, admin listOffsets. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OffsetsTest {

    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create();

    static final String TOPIC = "offsets";
    static final int N = 2_000;
    static final long STEP_MS = 10;
    /** Ten minutes in the past: inside any sane message.timestamp.{before,after}.max.ms. */
    static final long BASE = System.currentTimeMillis() - 600_000L;
    /** Partition 1: non-monotonic timestamps (offset -> ts - BASE). */
    static final long[] SHUFFLED = {100, 300, 200, 400, 50, 350};

    static Admin admin;
    static KafkaConsumer<byte[], byte[]> consumer;
    static final TopicPartition P0 = new TopicPartition(TOPIC, 0);
    static final TopicPartition P1 = new TopicPartition(TOPIC, 1);
    static final TopicPartition P2 = new TopicPartition(TOPIC, 2);

    @BeforeAll
    static void produce() throws Exception {
        admin = broker.admin();
        TestRecords.createTopic(broker, admin, TOPIC, 3);
        // Big batches: many records (with distinct timestamps) share a batch, so lookups must be record-precise.
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.LINGER_MS_CONFIG, 100,
                ProducerConfig.BATCH_SIZE_CONFIG, 512 * 1024,
                ProducerConfig.ACKS_CONFIG, "all"))) {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < N; i++) {
                recs.add(new ProducerRecord<>(TOPIC, 0, BASE + i * STEP_MS, null,
                        ("r" + i).getBytes(StandardCharsets.UTF_8)));
            }
            // Two halves, flushed separately, so partition 0 has several batches.
            TestRecords.sendAll(producer, recs.subList(0, N / 2));
            List<TestRecords.Sent> second = TestRecords.sendAll(producer, recs.subList(N / 2, N));
            assertEquals(N - 1, second.get(second.size() - 1).metadata.offset(), "offset of the last record");

            List<ProducerRecord<byte[], byte[]>> shuffled = new ArrayList<>();
            for (long d : SHUFFLED) {
                shuffled.add(new ProducerRecord<>(TOPIC, 1, BASE + d, null, ("s" + d).getBytes(StandardCharsets.UTF_8)));
            }
            TestRecords.sendAll(producer, shuffled);
        }
        consumer = broker.consumer();
    }

    @AfterAll
    static void close() {
        if (consumer != null) {
            consumer.close();
        }
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
        }
    }

    private static OffsetAndTimestamp forTime(TopicPartition tp, long ts) {
        return consumer.offsetsForTimes(Map.of(tp, ts), Duration.ofSeconds(15)).get(tp);
    }

    private static void assertLookup(TopicPartition tp, long target, long expectedOffset, long expectedTs) {
        OffsetAndTimestamp o = forTime(tp, target);
        String what = "offsetsForTimes(" + tp + ", BASE+" + (target - BASE) + ")";
        assertNotNull(o, what + " returned null, expected offset " + expectedOffset);
        assertEquals(expectedOffset, o.offset(), what + " offset");
        assertEquals(expectedTs, o.timestamp(), what + " timestamp");
    }

    @Test
    void offsetsForTimesIsRecordPrecise() {
        // Exact hits, including inside batches and at the batch boundary between the two halves.
        for (int i : new int[] {0, 1, 2, 7, 123, 499, 500, 998, 999, 1000, 1001, 1500, N - 2, N - 1}) {
            assertLookup(P0, BASE + i * STEP_MS, i, BASE + i * STEP_MS);
        }
        // Between two records: the first record with ts >= target is the next one.
        for (int i : new int[] {0, 3, 250, 999, 1000, 1777, N - 2}) {
            assertLookup(P0, BASE + i * STEP_MS + 3, i + 1, BASE + (i + 1) * STEP_MS);
        }
        // Before everything: offset 0.
        assertLookup(P0, BASE - 60_000, 0, BASE);
        assertLookup(P0, 0L, 0, BASE);
    }

    @Test
    void offsetsForTimesAfterLastRecordIsNull() {
        assertNull(forTime(P0, BASE + (N - 1) * STEP_MS + 1), "target after the last record");
        assertNull(forTime(P0, System.currentTimeMillis() + 3_600_000L), "target in the future");
        assertNull(forTime(P2, BASE), "empty partition");
    }

    /** Timestamps not in offset order: the answer is the first offset (in log order) whose ts >= target. */
    @Test
    void offsetsForTimesWithNonMonotonicTimestamps() {
        // SHUFFLED = {100, 300, 200, 400, 50, 350}
        assertLookup(P1, BASE + 40, 0, BASE + 100);
        assertLookup(P1, BASE + 100, 0, BASE + 100);
        assertLookup(P1, BASE + 150, 1, BASE + 300);
        assertLookup(P1, BASE + 250, 1, BASE + 300);
        assertLookup(P1, BASE + 301, 3, BASE + 400);
        assertLookup(P1, BASE + 360, 3, BASE + 400);
        assertLookup(P1, BASE + 400, 3, BASE + 400);
        assertNull(forTime(P1, BASE + 401), "target after the max timestamp");
    }

    @Test
    void offsetsForTimesManyPartitionsAtOnce() {
        Map<TopicPartition, Long> q = new HashMap<>();
        q.put(P0, BASE + 1234 * STEP_MS - 1);
        q.put(P1, BASE + 200);
        q.put(P2, BASE);
        Map<TopicPartition, OffsetAndTimestamp> r = consumer.offsetsForTimes(q, Duration.ofSeconds(15));
        assertNotNull(r.get(P0), "P0");
        assertEquals(1234L, r.get(P0).offset());
        assertNotNull(r.get(P1), "P1");
        assertEquals(1L, r.get(P1).offset());
        assertNull(r.get(P2), "empty partition");
    }

    @Test
    void beginningAndEndOffsets() throws Exception {
        List<TopicPartition> all = List.of(P0, P1, P2);
        Map<TopicPartition, Long> begin = consumer.beginningOffsets(all, Duration.ofSeconds(15));
        Map<TopicPartition, Long> end = consumer.endOffsets(all, Duration.ofSeconds(15));
        assertEquals(Map.of(P0, 0L, P1, 0L, P2, 0L), begin, "beginningOffsets");
        assertEquals(Map.of(P0, (long) N, P1, (long) SHUFFLED.length, P2, 0L), end, "endOffsets (last offset + 1)");

        // The same through the admin client.
        Map<TopicPartition, OffsetSpec> earliest = new HashMap<>();
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        for (TopicPartition tp : all) {
            earliest.put(tp, OffsetSpec.earliest());
            latest.put(tp, OffsetSpec.latest());
        }
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e =
                admin.listOffsets(earliest).all().get(15, TimeUnit.SECONDS);
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> l =
                admin.listOffsets(latest).all().get(15, TimeUnit.SECONDS);
        for (TopicPartition tp : all) {
            assertEquals(begin.get(tp).longValue(), e.get(tp).offset(), "admin earliest " + tp);
            assertEquals(end.get(tp).longValue(), l.get(tp).offset(), "admin latest " + tp);
        }

        // Reading from the end offset returns nothing; the last offset returns the last record.
        consumer.assign(List.of(P0));
        consumer.seek(P0, N - 1);
        List<ConsumerRecord<byte[], byte[]>> last = TestRecords.pollUntil(consumer, 1, Duration.ofSeconds(15));
        assertEquals(1, last.size(), "exactly one record from offset N-1");
        assertEquals(N - 1, last.get(0).offset());
        assertEquals(BASE + (N - 1) * STEP_MS, last.get(0).timestamp(), "explicit timestamp kept");
        consumer.unsubscribe();
    }

    /** Record-precise lookups also inside compressed batches (the broker has to look into the batch). */
    @ParameterizedTest(name = "compression={0}")
    @ValueSource(strings = {"lz4", "zstd", "gzip"})
    void offsetsForTimesInsideCompressedBatches(String compression) throws Exception {
        String topic = "offsets-" + compression;
        TestRecords.createTopic(broker, admin, topic, 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        int n = 600;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.LINGER_MS_CONFIG, 100,
                ProducerConfig.BATCH_SIZE_CONFIG, 512 * 1024,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, compression))) {
            List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                recs.add(new ProducerRecord<>(topic, 0, BASE + i * STEP_MS, null,
                        ("c" + i).getBytes(StandardCharsets.UTF_8)));
            }
            TestRecords.sendAll(producer, recs.subList(0, n / 2));
            TestRecords.sendAll(producer, recs.subList(n / 2, n));
        }
        for (int i : new int[] {0, 1, 150, 299, 300, 301, 598, 599}) {
            assertLookup(tp, BASE + i * STEP_MS, i, BASE + i * STEP_MS);
        }
        for (int i : new int[] {0, 42, 299, 300, 598}) {
            assertLookup(tp, BASE + i * STEP_MS + 1, i + 1, BASE + (i + 1) * STEP_MS);
        }
        assertNull(forTime(tp, BASE + (n - 1) * STEP_MS + 1), "target after the last record");
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> max = admin.listOffsets(
                Map.of(tp, OffsetSpec.maxTimestamp())).all().get(15, TimeUnit.SECONDS);
        assertEquals(n - 1, max.get(tp).offset(), "max-timestamp offset inside a compressed batch");
    }

    /** End offsets move when more records are appended. */
    @Test
    void endOffsetAdvancesAfterProduce() throws Exception {
        String topic = "offsets-advance";
        TestRecords.createTopic(broker, admin, topic, 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        assertEquals(0L, consumer.endOffsets(List.of(tp), Duration.ofSeconds(15)).get(tp));
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of())) {
            for (int round = 1; round <= 3; round++) {
                List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
                for (int i = 0; i < 17; i++) {
                    recs.add(new ProducerRecord<>(topic, 0, null, new byte[] {(byte) i}));
                }
                TestRecords.sendAll(producer, recs);
                assertEquals(17L * round, consumer.endOffsets(List.of(tp), Duration.ofSeconds(15)).get(tp),
                        "end offset after round " + round);
                assertEquals(0L, consumer.beginningOffsets(List.of(tp), Duration.ofSeconds(15)).get(tp));
            }
        }
    }

    /** ListOffsets with the max-timestamp spec (KIP-734, ListOffsets v7) finds the record with the largest ts. */
    @Test
    void adminListOffsetsMaxTimestamp() throws Exception {
        Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> r = admin.listOffsets(
                Map.of(P0, OffsetSpec.maxTimestamp(), P1, OffsetSpec.maxTimestamp())).all().get(15, TimeUnit.SECONDS);
        assertEquals(N - 1, r.get(P0).offset(), "max-timestamp offset of P0");
        assertEquals(BASE + (N - 1) * STEP_MS, r.get(P0).timestamp(), "max timestamp of P0");
        assertEquals(3L, r.get(P1).offset(), "max-timestamp offset of P1");
        assertEquals(BASE + 400, r.get(P1).timestamp(), "max timestamp of P1");
    }

    /**
     * Fetching past the end: with auto.offset.reset=none the consumer gets OffsetOutOfRangeException; with earliest
     * or latest it resets to the beginning or the end.
     */
    @Test
    void fetchOutOfRange() {
        try (KafkaConsumer<byte[], byte[]> c = broker.consumer(Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"))) {
            c.assign(List.of(P0));
            c.seek(P0, N + 1_000);
            OffsetOutOfRangeException e = assertThrows(OffsetOutOfRangeException.class, () -> {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                while (System.nanoTime() < deadline) {
                    c.poll(Duration.ofMillis(500));
                }
            }, "poll at offset N+1000 with auto.offset.reset=none");
            assertEquals(Long.valueOf(N + 1_000), e.offsetOutOfRangePartitions().get(P0));
        }
        try (KafkaConsumer<byte[], byte[]> c = broker.consumer(Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"))) {
            c.assign(List.of(P0));
            c.seek(P0, N + 1_000);
            List<ConsumerRecord<byte[], byte[]>> got = TestRecords.pollUntil(c, 1, Duration.ofSeconds(15));
            assertEquals(0L, got.get(0).offset(), "after reset to earliest");
        }
        try (KafkaConsumer<byte[], byte[]> c = broker.consumer(Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest"))) {
            c.assign(List.of(P0));
            c.seek(P0, N + 1_000);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
            while (c.position(P0) != N && System.nanoTime() < deadline) {
                assertTrue(c.poll(Duration.ofMillis(300)).isEmpty(), "no records after reset to latest");
            }
            assertEquals((long) N, c.position(P0), "position after reset to latest");
        }
    }
}
