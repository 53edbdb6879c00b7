package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@Timeout(value = 90, unit = TimeUnit.SECONDS)
class ProduceConsumeTest {

    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create().withArgs("--default-partitions", "3");

    static final int PARTITIONS = 6;
    static final int RECORDS = 20_000;

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

    /**
     * Produces 20,000 records to every partition of a 6-partition topic and reads them all back byte-equal, with
     * contiguous offsets from 0 and the per-partition send order preserved.
     */
    @ParameterizedTest(name = "acks={0} compression={1}")
    @CsvSource({
        "1,   none",
        "all, none",
        "1,   lz4",
        "all, zstd",
        "all, gzip",
        "1,   snappy",
    })
    void produceThenConsumeEverything(String acks, String compression) throws Exception {
        String topic = "pc-acks" + acks + "-" + compression;
        TestRecords.createTopic(broker, admin, topic, PARTITIONS);

        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>(RECORDS);
        for (int i = 0; i < RECORDS; i++) {
            records.add(TestRecords.record(topic, i % PARTITIONS, topic, i));
        }
        List<TestRecords.Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.ACKS_CONFIG, acks,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, compression,
                ProducerConfig.LINGER_MS_CONFIG, 5))) {
            sent = TestRecords.sendAll(producer, records);
        }

        // Offsets acknowledged per partition are 0..n-1.
        for (int p = 0; p < PARTITIONS; p++) {
            final int part = p;
            long[] offsets = sent.stream().filter(s -> s.metadata.partition() == part)
                    .mapToLong(s -> s.metadata.offset()).sorted().toArray();
            for (int i = 0; i < offsets.length; i++) {
                assertEquals(i, offsets[i], "acknowledged offsets of partition " + p + " must be 0..n-1");
            }
        }

        List<TopicPartition> tps = TestRecords.partitions(topic, PARTITIONS);
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            List<ConsumerRecord<byte[], byte[]>> got =
                    TestRecords.consumeAll(consumer, tps, RECORDS, Duration.ofSeconds(60));
            TestRecords.verify(topic, sent, got, TestRecords.zeros());

            Map<TopicPartition, Long> end = consumer.endOffsets(tps, Duration.ofSeconds(15));
            for (TopicPartition tp : tps) {
                long expected = sent.stream().filter(s -> s.metadata.partition() == tp.partition()).count();
                assertEquals(expected, end.get(tp), "end offset of " + tp);
            }
        }
    }

    /**
     * A consumer that waits at the end of a partition with fetch.max.wait.ms=5000 must get a newly produced record
     * promptly: the broker has to answer the pending long-poll fetch when data arrives, not when the wait expires.
     */
    @Test
    void consumerAtEndReceivesNewRecordsPromptly() throws Exception {
        String topic = "long-poll";
        TestRecords.createTopic(broker, admin, topic, 2);
        TopicPartition tp0 = new TopicPartition(topic, 0);
        TopicPartition tp1 = new TopicPartition(topic, 1);

        ExecutorService exec = Executors.newSingleThreadExecutor();
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.ACKS_CONFIG, "1", ProducerConfig.LINGER_MS_CONFIG, 0));
             KafkaConsumer<byte[], byte[]> consumer = broker.consumer(Map.of(
                     ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 5_000,
                     ConsumerConfig.FETCH_MIN_BYTES_CONFIG, 1))) {
            // Some history that the consumer must skip.
            for (int i = 0; i < 100; i++) {
                producer.send(new ProducerRecord<>(topic, i % 2, null, ("old-" + i).getBytes(StandardCharsets.UTF_8)));
            }
            producer.flush();

            consumer.assign(List.of(tp0, tp1));
            consumer.seekToEnd(List.of(tp0, tp1));
            assertEquals(50L, consumer.position(tp0, Duration.ofSeconds(15)), "position after seekToEnd on " + tp0);
            assertEquals(50L, consumer.position(tp1, Duration.ofSeconds(15)), "position after seekToEnd on " + tp1);
            assertTrue(consumer.poll(Duration.ofMillis(1_000)).isEmpty(), "nothing new should be returned yet");

            for (int round = 0; round < 3; round++) {
                final byte[] value = ("new-" + round).getBytes(StandardCharsets.UTF_8);
                final int partition = round % 2;
                final long expectedOffset = 50L + round / 2;
                // Produce 1.5 s into the consumer's wait, i.e. while its fetch is parked in the broker.
                Future<Long> sentAt = exec.submit(() -> {
                    Thread.sleep(1_500);
                    long t0 = System.nanoTime();
                    RecordMetadata md = producer.send(new ProducerRecord<>(topic, partition, null, value))
                            .get(15, TimeUnit.SECONDS);
                    assertEquals(expectedOffset, md.offset(), "offset of new record");
                    return t0;
                });
                ConsumerRecord<byte[], byte[]> got = null;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (got == null && System.nanoTime() < deadline) {
                    ConsumerRecords<byte[], byte[]> recs = consumer.poll(Duration.ofMillis(10_000));
                    for (ConsumerRecord<byte[], byte[]> r : recs) {
                        assertArrayEquals(value, r.value(), "unexpected record " + r);
                        got = r;
                    }
                }
                long receivedAt = System.nanoTime();
                if (got == null) {
                    fail("round " + round + ": record produced to partition " + partition + " was never received");
                }
                long latencyMs = TimeUnit.NANOSECONDS.toMillis(receivedAt - sentAt.get(20, TimeUnit.SECONDS));
                System.out.println("long-poll wakeup round " + round + ": " + latencyMs + " ms from send to receipt");
                assertEquals(partition, got.partition());
                assertEquals(expectedOffset, got.offset());
                assertTrue(latencyMs < 2_500, "round " + round + ": record took " + latencyMs
                        + " ms from send to consumer (fetch.max.wait.ms=5000): a parked fetch was not woken up");
            }
        } finally {
            exec.shutdownNow();
        }
    }

    /**
     * KafkaConsumer.close() ends its fetch session with a Fetch that names no partitions (sessionEpoch=-1). Apache
     * Kafka answers a fetch with no partitions at once; a broker that parks it for fetch.max.wait.ms makes every
     * consumer close() that long.
     */
    @Test
    void consumerCloseIsPrompt() throws Exception {
        String topic = "close-prompt";
        TestRecords.createTopic(broker, admin, topic, 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 0))) {
            KafkaConsumer<byte[], byte[]> consumer = broker.consumer(Map.of(
                    ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 5_000));
            try {
                consumer.assign(List.of(tp));
                consumer.seekToBeginning(List.of(tp));
                producer.send(new ProducerRecord<>(topic, 0, null, new byte[] {1})).get(15, TimeUnit.SECONDS);
                assertEquals(1, TestRecords.pollUntil(consumer, 1, Duration.ofSeconds(15)).size());
                // The consumer now has a fetch parked in the broker; this record completes it right away.
                producer.send(new ProducerRecord<>(topic, 0, null, new byte[] {2})).get(15, TimeUnit.SECONDS);
                Thread.sleep(200);
            } finally {
                long t0 = System.nanoTime();
                consumer.close();
                long closeMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
                System.out.println("consumer close took " + closeMs + " ms");
                assertTrue(closeMs < 2_500, "KafkaConsumer.close() took " + closeMs + " ms with fetch.max.wait.ms=5000: "
                        + "the broker parked the session-closing Fetch that has no partitions instead of answering it at once");
            }
        }
    }

    /** Producing to a topic that does not exist auto-creates it (--default-partitions 3) and the data is readable. */
    @Test
    void produceAutoCreatesTopic() throws Exception {
        String topic = "auto-created-on-produce";
        RecordMetadata md;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of())) {
            md = producer.send(new ProducerRecord<>(topic, "k".getBytes(StandardCharsets.UTF_8),
                    "v".getBytes(StandardCharsets.UTF_8))).get(30, TimeUnit.SECONDS);
        }
        assertEquals(0L, md.offset());
        Set<String> names = admin.listTopics().names().get(15, TimeUnit.SECONDS);
        assertTrue(names.contains(topic), "auto-created topic missing from listTopics: " + names);
        int partitionCount = admin.describeTopics(List.of(topic)).allTopicNames().get(15, TimeUnit.SECONDS)
                .get(topic).partitions().size();
        assertEquals(3, partitionCount, "partitions of a topic auto-created with --default-partitions 3");

        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            TopicPartition tp = new TopicPartition(topic, md.partition());
            List<ConsumerRecord<byte[], byte[]>> got =
                    TestRecords.consumeAll(consumer, List.of(tp), 1, Duration.ofSeconds(30));
            assertEquals(1, got.size());
            assertArrayEquals("k".getBytes(StandardCharsets.UTF_8), got.get(0).key());
            assertArrayEquals("v".getBytes(StandardCharsets.UTF_8), got.get(0).value());
        }
    }

    /**
     * Consuming from the middle of a partition (seek to an offset that falls inside a batch, compressed or not)
     * returns records from exactly that offset on.
     */
    @ParameterizedTest(name = "compression={0}")
    @CsvSource({"none", "zstd"})
    void seekIntoTheMiddleOfABatch(String compression) throws Exception {
        String topic = "seek-middle-" + compression;
        TestRecords.createTopic(broker, admin, topic, 1);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 1_000; i++) {
            records.add(TestRecords.record(topic, 0, topic, i));
        }
        List<TestRecords.Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.LINGER_MS_CONFIG, 50, ProducerConfig.BATCH_SIZE_CONFIG, 256 * 1024,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, compression))) {
            sent = TestRecords.sendAll(producer, records);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            consumer.assign(List.of(tp));
            for (long start : new long[] {1, 377, 998, 999}) {
                consumer.seek(tp, start);
                List<ConsumerRecord<byte[], byte[]>> got =
                        TestRecords.pollUntil(consumer, (int) (1_000 - start), Duration.ofSeconds(30));
                assertEquals(start, got.get(0).offset(), "first offset returned after seek(" + start + ")");
                TestRecords.verify(topic, sent.subList((int) start, 1_000), got, Map.of(0, start));
            }
        }
    }

    /**
     * Four producers (separate connections, so possibly different shards) write to the same six partitions at once.
     * Every acknowledged offset is unique, the log is contiguous, and each producer's records keep their order.
     */
    @Test
    void concurrentProducersToTheSamePartitions() throws Exception {
        String topic = "concurrent-producers";
        TestRecords.createTopic(broker, admin, topic, PARTITIONS);
        int producers = 4;
        int perProducer = 5_000;
        ExecutorService exec = Executors.newFixedThreadPool(producers);
        List<Future<List<TestRecords.Sent>>> futures = new ArrayList<>();
        try {
            for (int k = 0; k < producers; k++) {
                final int id = k;
                futures.add(exec.submit(() -> {
                    List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>(perProducer);
                    for (int i = 0; i < perProducer; i++) {
                        records.add(TestRecords.record(topic, i % PARTITIONS, "producer-" + id, i));
                    }
                    try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                            ProducerConfig.CLIENT_ID_CONFIG, "java-tests-producer-" + id,
                            ProducerConfig.ACKS_CONFIG, id % 2 == 0 ? "all" : "1",
                            ProducerConfig.COMPRESSION_TYPE_CONFIG, id == 3 ? "lz4" : "none"))) {
                        return TestRecords.sendAll(producer, records);
                    }
                }));
            }
            List<TestRecords.Sent> all = new ArrayList<>();
            for (int k = 0; k < producers; k++) {
                List<TestRecords.Sent> sent = futures.get(k).get(60, TimeUnit.SECONDS);
                // Per producer and partition, acknowledged offsets increase in send order.
                long[] last = new long[PARTITIONS];
                Arrays.fill(last, -1);
                for (TestRecords.Sent x : sent) {
                    int p = x.metadata.partition();
                    assertTrue(x.metadata.offset() > last[p], "producer " + k + ": record #" + x.index
                            + " got offset " + x.metadata.offset() + " in partition " + p
                            + ", not after its previous record's offset " + last[p]);
                    last[p] = x.metadata.offset();
                }
                all.addAll(sent);
            }
            try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
                List<ConsumerRecord<byte[], byte[]>> got = TestRecords.consumeAll(consumer,
                        TestRecords.partitions(topic, PARTITIONS), all.size(), Duration.ofSeconds(60));
                TestRecords.verifyByOffset(topic, all, got);
            }
        } finally {
            exec.shutdownNow();
        }
    }

    /** One producer writing to three topics at once (multi-topic Produce), one consumer reading all of them. */
    @Test
    void multiTopicProduceAndFetch() throws Exception {
        List<String> topics = List.of("multi-a", "multi-b", "multi-c");
        for (String t : topics) {
            TestRecords.createTopic(broker, admin, t, 2);
        }
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 6_000; i++) {
            String t = topics.get(i % 3);
            records.add(TestRecords.record(t, (i / 3) % 2, t, i));
        }
        List<TestRecords.Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 20))) {
            sent = TestRecords.sendAll(producer, records);
        }
        List<TopicPartition> tps = new ArrayList<>();
        for (String t : topics) {
            tps.addAll(TestRecords.partitions(t, 2));
        }
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            List<ConsumerRecord<byte[], byte[]>> got =
                    TestRecords.consumeAll(consumer, tps, records.size(), Duration.ofSeconds(60));
            for (String t : topics) {
                List<TestRecords.Sent> sentT = new ArrayList<>();
                for (TestRecords.Sent x : sent) {
                    if (x.record.topic().equals(t)) {
                        sentT.add(x);
                    }
                }
                List<ConsumerRecord<byte[], byte[]>> gotT = new ArrayList<>();
                for (ConsumerRecord<byte[], byte[]> r : got) {
                    if (r.topic().equals(t)) {
                        gotT.add(r);
                    }
                }
                TestRecords.verify(t, sentT, gotT, TestRecords.zeros());
            }
        }
    }

    /** A consumer that reads from the beginning while a producer is still writing gets every record exactly once. */
    @Test
    void consumeWhileProducing() throws Exception {
        String topic = "tail-while-producing";
        int partitions = 3;
        int count = 15_000;
        TestRecords.createTopic(broker, admin, topic, partitions);
        List<TopicPartition> tps = TestRecords.partitions(topic, partitions);
        ExecutorService exec = Executors.newSingleThreadExecutor();
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer(Map.of(
                ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100))) {
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            consumer.poll(Duration.ofMillis(200));
            Future<List<TestRecords.Sent>> producing = exec.submit(() -> {
                List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
                for (int i = 0; i < count; i++) {
                    records.add(TestRecords.record(topic, i % partitions, topic, i));
                }
                try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                        ProducerConfig.ACKS_CONFIG, "1", ProducerConfig.LINGER_MS_CONFIG, 1))) {
                    List<TestRecords.Sent> out = new ArrayList<>();
                    for (int from = 0; from < count; from += 500) {
                        out.addAll(TestRecords.sendAll(producer, records.subList(from, from + 500)));
                    }
                    return out;
                }
            });
            List<ConsumerRecord<byte[], byte[]>> got = TestRecords.pollUntil(consumer, count, Duration.ofSeconds(60));
            List<TestRecords.Sent> sent = producing.get(60, TimeUnit.SECONDS);
            TestRecords.verify(topic, sent, got, TestRecords.zeros());
        } finally {
            exec.shutdownNow();
        }
    }

    /**
     * With tiny fetch limits the broker must still return at least one whole batch per fetch (as Kafka does), so the
     * consumer makes progress, including past a 200 KB record.
     */
    @Test
    void tinyFetchLimitsStillMakeProgress() throws Exception {
        String topic = "tiny-fetch";
        TestRecords.createTopic(broker, admin, topic, 1);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 4_000; i < 4_500; i++) { // includes record 4321 (200 KB value)
            records.add(TestRecords.record(topic, 0, topic, i));
        }
        List<TestRecords.Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of())) {
            sent = TestRecords.sendAll(producer, records);
        }
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer(Map.of(
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 1024,
                ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 2048))) {
            List<ConsumerRecord<byte[], byte[]>> got = TestRecords.consumeAll(consumer,
                    List.of(new TopicPartition(topic, 0)), records.size(), Duration.ofSeconds(60));
            TestRecords.verify(topic, sent, got, TestRecords.zeros());
        }
    }

    /** acks=0: the broker must not answer the produce requests, and the records must all be stored, in order. */
    @Test
    void acksZero() throws Exception {
        String topic = "acks-zero";
        int partitions = 2;
        int count = 3_000;
        TestRecords.createTopic(broker, admin, topic, partitions);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            records.add(TestRecords.record(topic, i % partitions, topic, i));
        }
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(ProducerConfig.ACKS_CONFIG, "0"))) {
            for (ProducerRecord<byte[], byte[]> r : records) {
                producer.send(r);
            }
            producer.flush();
        }
        List<TopicPartition> tps = TestRecords.partitions(topic, partitions);
        try (KafkaConsumer<byte[], byte[]> consumer = broker.consumer()) {
            List<ConsumerRecord<byte[], byte[]>> got =
                    TestRecords.consumeAll(consumer, tps, count, Duration.ofSeconds(30));
            assertEquals(count, got.size(), "records stored with acks=0");
            int[] seen = new int[partitions];
            for (ConsumerRecord<byte[], byte[]> r : got) {
                int p = r.partition();
                ProducerRecord<byte[], byte[]> want = records.get(seen[p] * partitions + p);
                assertEquals(seen[p], r.offset(), "offset in partition " + p);
                assertArrayEquals(want.key(), r.key(), "key at " + p + "/" + r.offset());
                assertArrayEquals(want.value(), r.value(), "value at " + p + "/" + r.offset());
                seen[p]++;
            }
        }
    }

    /** A batch larger than the topic's max.message.bytes is rejected with RecordTooLargeException. */
    @Test
    void recordLargerThanTopicMaxMessageBytesIsRejected() throws Exception {
        String topic = "max-message-bytes";
        TestRecords.createTopic(broker, admin, new NewTopic(topic, 1, (short) 1)
                .configs(Map.of("max.message.bytes", "10000")));
        try (KafkaProducer<byte[], byte[]> producer = broker.producer(Map.of(
                ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 8 * 1024 * 1024,
                ProducerConfig.LINGER_MS_CONFIG, 0,
                ProducerConfig.COMPRESSION_TYPE_CONFIG, "none"))) {
            ExecutionException e = assertThrows(
                    ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(topic, 0, null, new byte[20_000])).get(30, TimeUnit.SECONDS));
            assertInstanceOf(
                    RecordTooLargeException.class, e.getCause(),
                    "20 KB record to a topic with max.message.bytes=10000: " + e.getCause());
            RecordMetadata md = producer.send(new ProducerRecord<>(topic, 0, null, new byte[5_000]))
                    .get(30, TimeUnit.SECONDS);
            assertEquals(0L, md.offset(), "the rejected record must not have been stored");

            // The broker-wide limit (default 1048588, as in Kafka) applies to topics without an override.
            String other = "max-message-bytes-default";
            TestRecords.createTopic(broker, admin, other, 1);
            e = assertThrows(ExecutionException.class,
                    () -> producer.send(new ProducerRecord<>(other, 0, null, new byte[2 * 1024 * 1024]))
                            .get(30, TimeUnit.SECONDS));
            assertInstanceOf(
                    RecordTooLargeException.class, e.getCause(),
                    "2 MiB record with the default max.message.bytes: " + e.getCause());
        }
    }
}
