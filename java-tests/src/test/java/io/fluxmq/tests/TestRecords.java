package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;

/** Deterministic record generation, producing, consuming and byte-exact verification. */
final class TestRecords {

    private TestRecords() {}

    /** A record as it was sent, with the metadata the broker acknowledged. */
    static final class Sent {
        final int index;
        final ProducerRecord<byte[], byte[]> record;
        final Future<RecordMetadata> future;
        RecordMetadata metadata;

        Sent(int index, ProducerRecord<byte[], byte[]> record, Future<RecordMetadata> future) {
            this.index = index;
            this.record = record;
            this.future = future;
        }
    }

    /**
     * Builds record {@code i} of a run: every 10th key is null, every 3rd record has headers (including an empty and
     * a null header value, and every 15th a repeated header key), a few values are null or empty, one is large, the
     * rest are distinct pseudo-random bytes of varied length.
     */
    static ProducerRecord<byte[], byte[]> record(String topic, int partition, String run, int i) {
        byte[] key = (i % 10 == 0) ? null : ("key-" + run + "-" + i).getBytes(StandardCharsets.UTF_8);
        byte[] value;
        if (i % 1000 == 999) {
            value = null; // tombstone-style null value
        } else if (i % 1000 == 998) {
            value = new byte[0];
        } else if (i == 4321) {
            value = randomBytes(run, i, 200_000); // larger than the default batch.size
        } else {
            byte[] prefix = ("value-" + run + "-" + i + "-").getBytes(StandardCharsets.UTF_8);
            byte[] body = randomBytes(run, i, (i * 37) % 700);
            value = new byte[prefix.length + body.length];
            System.arraycopy(prefix, 0, value, 0, prefix.length);
            System.arraycopy(body, 0, value, prefix.length, body.length);
        }
        List<Header> headers = new ArrayList<>();
        if (i % 3 == 0) {
            headers.add(new RecordHeader("trace-id", ("t-" + i).getBytes(StandardCharsets.UTF_8)));
            headers.add(new RecordHeader("empty", new byte[0]));
            headers.add(new RecordHeader("null-value", (byte[]) null));
            if (i % 15 == 0) {
                headers.add(new RecordHeader("trace-id", ("again-" + i).getBytes(StandardCharsets.UTF_8)));
                headers.add(new RecordHeader("bin\u00e9", randomBytes(run, -i, 64)));
            }
        }
        return new ProducerRecord<>(topic, partition, null, key, value, headers);
    }

    static byte[] randomBytes(String run, int seed, int len) {
        byte[] b = new byte[len];
        new Random(run.hashCode() * 1_000_003L + seed).nextBytes(b);
        return b;
    }

    static void createTopic(FluxmqBroker broker, Admin admin, String topic, int partitions) throws Exception {
        createTopic(broker, admin, new NewTopic(topic, partitions, (short) 1));
    }

    static void createTopic(FluxmqBroker broker, Admin admin, NewTopic topic) throws Exception {
        admin.createTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
        awaitPartitionsReady(broker, topic.name(), topic.numPartitions());
    }

    /**
     * Waits until every partition answers ListOffsets from its leader (end offset 0 for a new topic). Topic creation
     * may complete asynchronously (it does in Apache Kafka); producing before the leader is ready gets a retriable
     * error, and a retry with several requests in flight (no idempotence) can reorder batches.
     */
    static void awaitPartitionsReady(FluxmqBroker broker, String topic, int partitions) {
        try (KafkaConsumer<byte[], byte[]> c = broker.consumer()) {
            List<TopicPartition> tps = partitions(topic, partitions);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            assertEquals(partitions, end.size(), "end offsets of new topic " + topic + ": " + end);
            for (TopicPartition tp : tps) {
                assertEquals(0L, end.get(tp), "end offset of new partition " + tp);
            }
        }
    }

    /** Sends all records, flushes, and waits for every acknowledgement (failing on the first send error). */
    static List<Sent> sendAll(KafkaProducer<byte[], byte[]> producer, List<ProducerRecord<byte[], byte[]>> records)
            throws InterruptedException {
        List<Sent> sent = new ArrayList<>(records.size());
        for (int i = 0; i < records.size(); i++) {
            ProducerRecord<byte[], byte[]> r = records.get(i);
            sent.add(new Sent(i, r, producer.send(r)));
        }
        producer.flush();
        for (Sent s : sent) {
            try {
                s.metadata = s.future.get(60, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                throw new AssertionError("send of record #" + s.index + " to partition " + s.record.partition()
                        + " failed: " + e.getCause(), e.getCause());
            } catch (TimeoutException e) {
                throw new AssertionError("send of record #" + s.index + " was not acknowledged in 60 s", e);
            }
            assertNotNull(s.metadata);
            assertEquals(s.record.partition().intValue(), s.metadata.partition(),
                    "acknowledged partition of record #" + s.index);
        }
        return sent;
    }

    /** Assigns all partitions from the beginning and polls until {@code expected} records arrived (or timeout). */
    static List<ConsumerRecord<byte[], byte[]>> consumeAll(KafkaConsumer<byte[], byte[]> consumer,
            Collection<TopicPartition> partitions, int expected, Duration timeout) {
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        return pollUntil(consumer, expected, timeout);
    }

    static List<ConsumerRecord<byte[], byte[]>> pollUntil(KafkaConsumer<byte[], byte[]> consumer, int expected,
            Duration timeout) {
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>(expected);
        long deadline = System.nanoTime() + timeout.toNanos();
        while (out.size() < expected && System.nanoTime() < deadline) {
            ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(500));
            batch.forEach(out::add);
        }
        if (out.size() < expected) {
            fail("consumed only " + out.size() + " of " + expected + " records within " + timeout.toSeconds()
                    + " s; per partition: " + countByPartition(out) + "; consumer positions: "
                    + positions(consumer));
        }
        // Anything beyond the expected records (duplicates, phantom records) must show up here too.
        consumer.poll(Duration.ofMillis(300)).forEach(out::add);
        return out;
    }

    private static Map<TopicPartition, Long> positions(KafkaConsumer<byte[], byte[]> consumer) {
        Map<TopicPartition, Long> m = new TreeMap<>((a, b) -> a.toString().compareTo(b.toString()));
        try {
            for (TopicPartition tp : consumer.assignment()) {
                m.put(tp, consumer.position(tp, Duration.ofSeconds(5)));
            }
        } catch (RuntimeException e) {
            // diagnostics only
        }
        return m;
    }

    static Map<Integer, Integer> countByPartition(List<ConsumerRecord<byte[], byte[]>> records) {
        Map<Integer, Integer> m = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            m.merge(r.partition(), 1, Integer::sum);
        }
        return m;
    }

    /**
     * Verifies that {@code consumed} is exactly {@code sent}: per partition, offsets are contiguous from
     * {@code firstOffset}, the records appear in send order, each record's offset equals the acknowledged offset, and
     * key, value, headers and timestamp are byte-equal.
     */
    static void verify(String topic, List<Sent> sent, List<ConsumerRecord<byte[], byte[]>> consumed,
            Map<Integer, Long> firstOffsetByPartition) {
        Map<Integer, List<Sent>> sentByPartition = new TreeMap<>();
        for (Sent s : sent) {
            sentByPartition.computeIfAbsent(s.record.partition(), p -> new ArrayList<>()).add(s);
        }
        Map<Integer, List<ConsumerRecord<byte[], byte[]>>> gotByPartition = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : consumed) {
            assertEquals(topic, r.topic(), "topic of consumed record");
            gotByPartition.computeIfAbsent(r.partition(), p -> new ArrayList<>()).add(r);
        }
        assertEquals(sentByPartition.keySet(), gotByPartition.keySet(), "partitions that returned records");

        for (Map.Entry<Integer, List<Sent>> e : sentByPartition.entrySet()) {
            int p = e.getKey();
            List<Sent> want = e.getValue();
            List<ConsumerRecord<byte[], byte[]>> got = gotByPartition.get(p);
            long first = firstOffsetByPartition.getOrDefault(p, 0L);
            // Offsets: contiguous, in order, no duplicates, starting at `first`.
            for (int i = 0; i < got.size(); i++) {
                if (got.get(i).offset() != first + i) {
                    fail("partition " + p + ": record #" + i + " has offset " + got.get(i).offset() + ", expected "
                            + (first + i) + " (offsets must be contiguous from " + first + ", in order, no duplicates)");
                }
            }
            assertEquals(want.size(), got.size(), "number of records in partition " + p);
            for (int i = 0; i < want.size(); i++) {
                Sent s = want.get(i);
                ConsumerRecord<byte[], byte[]> r = got.get(i);
                String where = "partition " + p + " offset " + r.offset() + " (sent record #" + s.index + ")";
                assertEquals(s.metadata.offset(), r.offset(), "acknowledged offset vs consumed offset at " + where
                        + " (order within the partition must be preserved)");
                assertArrayEquals(s.record.key(), r.key(), "key at " + where);
                assertArrayEquals(s.record.value(), r.value(), "value at " + where);
                assertHeadersEqual(s.record.headers().toArray(), r.headers().toArray(), where);
                assertEquals(TimestampType.CREATE_TIME, r.timestampType(), "timestamp type at " + where);
                long wantTs = s.record.timestamp() != null ? s.record.timestamp() : s.metadata.timestamp();
                assertEquals(wantTs, r.timestamp(), "timestamp at " + where);
                assertEquals(s.record.key() == null ? -1 : s.record.key().length, r.serializedKeySize(),
                        "serialized key size at " + where);
                assertEquals(s.record.value() == null ? -1 : s.record.value().length, r.serializedValueSize(),
                        "serialized value size at " + where);
            }
        }
    }

    /**
     * Verifies consumed records against sent ones by acknowledged (partition, offset), for several producers writing
     * concurrently: no two acknowledgements share an offset, consumed offsets are contiguous from 0 per partition,
     * every acknowledged record is read back byte-equal at its offset, and nothing else is read.
     */
    static void verifyByOffset(String topic, List<Sent> sent, List<ConsumerRecord<byte[], byte[]>> consumed) {
        Map<String, Sent> byOffset = new HashMap<>();
        for (Sent s : sent) {
            Sent prev = byOffset.put(s.metadata.partition() + "@" + s.metadata.offset(), s);
            if (prev != null) {
                fail("records #" + prev.index + " and #" + s.index + " were both acknowledged with offset "
                        + s.metadata.offset() + " in partition " + s.metadata.partition());
            }
        }
        Map<Integer, Long> next = new TreeMap<>();
        for (ConsumerRecord<byte[], byte[]> r : consumed) {
            long want = next.getOrDefault(r.partition(), 0L);
            assertEquals(want, r.offset(), "consumed offsets of partition " + r.partition()
                    + " must be contiguous from 0 without duplicates");
            next.put(r.partition(), want + 1);
            assertEquals(topic, r.topic());
            Sent s = byOffset.get(r.partition() + "@" + r.offset());
            String where = "partition " + r.partition() + " offset " + r.offset();
            if (s == null) {
                fail("consumed a record that no producer was acknowledged for at " + where);
            }
            assertArrayEquals(s.record.key(), r.key(), "key at " + where);
            assertArrayEquals(s.record.value(), r.value(), "value at " + where);
            assertHeadersEqual(s.record.headers().toArray(), r.headers().toArray(), where);
        }
        assertEquals(sent.size(), consumed.size(), "number of records read back");
    }

    static void assertHeadersEqual(Header[] want, Header[] got, String where) {
        assertEquals(want.length, got.length, "header count at " + where);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i].key(), got[i].key(), "header #" + i + " key at " + where);
            assertArrayEquals(want[i].value(), got[i].value(), "header #" + i + " (" + want[i].key() + ") value at " + where);
        }
    }

    static Map<Integer, Long> zeros() {
        return new HashMap<>();
    }

    static List<TopicPartition> partitions(String topic, int count) {
        List<TopicPartition> l = new ArrayList<>();
        for (int p = 0; p < count; p++) {
            l.add(new TopicPartition(topic, p));
        }
        return l;
    }
}
