package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A consume-transform-produce loop with {@code sendOffsetsToTransaction}: every input record appears exactly once
 * in the output, even though its producer is abandoned mid-transaction (a zombie, never closed) and replaced by a
 * new one with the same transactional.id, which fences it and aborts its transaction, output and offsets alike.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class ExactlyOnceGroupsTest {

    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create();

    static final String INPUT = "ctp-in";
    static final String OUTPUT = "ctp-out";
    static final String GROUP = "ctp-group";
    static final String TRANSACTIONAL_ID = "ctp-tx";
    static final int PARTITIONS = 3;
    static final int RECORDS = 3_000;

    KafkaProducer<byte[], byte[]> transactionalProducer() {
        Map<String, Object> c = new HashMap<>();
        c.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, broker.bootstrap());
        c.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        c.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        c.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, TRANSACTIONAL_ID);
        return new KafkaProducer<>(c);
    }

    KafkaConsumer<byte[], byte[]> groupConsumer() {
        return broker.consumer(Map.of(ConsumerConfig.GROUP_ID_CONFIG, GROUP,
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 200));
    }

    static Map<TopicPartition, OffsetAndMetadata> nextOffsets(ConsumerRecords<byte[], byte[]> records) {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (TopicPartition tp : records.partitions()) {
            List<ConsumerRecord<byte[], byte[]>> list = records.records(tp);
            offsets.put(tp, new OffsetAndMetadata(list.get(list.size() - 1).offset() + 1));
        }
        return offsets;
    }

    /** One transaction: transform what one poll returned, send it with the consumer's offsets. */
    static int transform(KafkaConsumer<byte[], byte[]> consumer, KafkaProducer<byte[], byte[]> producer,
            boolean commit) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(500));
        if (records.isEmpty()) {
            return 0;
        }
        producer.beginTransaction();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            byte[] out = ("out-" + new String(r.value(), StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
            producer.send(new ProducerRecord<>(OUTPUT, r.partition(), null, out));
        }
        producer.sendOffsetsToTransaction(nextOffsets(records), consumer.groupMetadata());
        if (commit) {
            producer.commitTransaction();
        } else {
            producer.flush();
        }
        return records.count();
    }

    @Test
    void consumeTransformProduceStaysExactlyOnceWhenTheProducerIsReplaced() throws Exception {
        try (Admin admin = broker.admin()) {
            TestRecords.createTopic(broker, admin, INPUT, PARTITIONS);
            TestRecords.createTopic(broker, admin, OUTPUT, PARTITIONS);
        }
        try (KafkaProducer<byte[], byte[]> input = broker.producer(Map.of())) {
            for (int i = 0; i < RECORDS; i++) {
                input.send(new ProducerRecord<>(INPUT, i % PARTITIONS, null,
                        ("r-" + i).getBytes(StandardCharsets.UTF_8)));
            }
            input.flush();
        }

        // First instance: processes a third, then dies mid-transaction (its producer is never closed).
        KafkaProducer<byte[], byte[]> zombie = transactionalProducer();
        zombie.initTransactions();
        try (KafkaConsumer<byte[], byte[]> consumer = groupConsumer()) {
            consumer.subscribe(List.of(INPUT));
            int processed = 0;
            while (processed < RECORDS / 3) {
                processed += transform(consumer, zombie, true);
            }
            while (transform(consumer, zombie, false) == 0) {
                // Until one transaction is left open with output and offsets in it.
            }
        }

        // Second instance: same transactional.id, same group. It fences the zombie and finishes the input.
        int processed = 0;
        try (KafkaProducer<byte[], byte[]> producer = transactionalProducer();
                KafkaConsumer<byte[], byte[]> consumer = groupConsumer()) {
            producer.initTransactions();
            consumer.subscribe(List.of(INPUT));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (System.nanoTime() < deadline) {
                processed += transform(consumer, producer, true);
                Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(
                        new java.util.HashSet<>(TestRecords.partitions(INPUT, PARTITIONS)));
                long done = committed.values().stream().mapToLong(o -> o == null ? 0 : o.offset()).sum();
                if (done == RECORDS) {
                    break;
                }
            }
        }
        assertTrue(processed > 0, "the second instance processed nothing");
        assertThrows(Exception.class, zombie::commitTransaction, "the zombie could still commit");
        zombie.close(Duration.ZERO);

        try (KafkaConsumer<byte[], byte[]> reader = broker.consumer(Map.of(
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"))) {
            List<TopicPartition> tps = TestRecords.partitions(OUTPUT, PARTITIONS);
            reader.assign(tps);
            reader.seekToBeginning(tps);
            Map<TopicPartition, Long> end = reader.endOffsets(tps);
            List<String> values = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (System.nanoTime() < deadline) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    done &= reader.position(tp) >= end.get(tp);
                }
                if (done) {
                    break;
                }
                reader.poll(Duration.ofMillis(200))
                        .forEach(r -> values.add(new String(r.value(), StandardCharsets.UTF_8)));
            }
            Map<String, Integer> counts = new TreeMap<>();
            values.forEach(v -> counts.merge(v, 1, Integer::sum));
            List<String> duplicates = new ArrayList<>();
            counts.forEach((v, n) -> {
                if (n > 1 && duplicates.size() < 20) {
                    duplicates.add(v + "×" + n);
                }
            });
            assertEquals(List.of(), duplicates, "duplicated output");
            assertEquals(RECORDS, counts.size(), "distinct output records");
        }
    }
}
