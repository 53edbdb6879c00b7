package io.fluxmq.tests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Exactly-once producers with the official Java client: an untouched (idempotent, acks=all) producer, retries
 * forced by a proxy that keeps cutting connections, interleaved committed and aborted transactions seen through
 * read_committed and read_uncommitted consumers, zombie fencing, and transaction timeouts.
 *
 * <p>The broker advertises the proxy's port ({@code --advertised-port}), so every client connection after
 * bootstrap also goes through the proxy; tests that do not want cuts simply leave it forwarding.
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class ExactlyOnceTest {

    static final CuttingProxy proxy = new CuttingProxy(freePort());

    @RegisterExtension
    static final FluxmqBroker broker = FluxmqBroker.create()
            .withArgs("--advertised-port", Integer.toString(proxy.port));

    @BeforeAll
    static void startProxy() throws IOException {
        proxy.start(broker.port());
    }

    @AfterAll
    static void stopProxy() {
        proxy.close();
    }

    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 50, InetAddress.getByName(FluxmqBroker.HOST))) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    String bootstrap() {
        return FluxmqBroker.HOST + ":" + proxy.port;
    }

    /** Only what a producer cannot run without: everything else is the client's default. */
    Map<String, Object> defaultProducerConfig() {
        Map<String, Object> c = new HashMap<>();
        c.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        c.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        c.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return c;
    }

    KafkaProducer<byte[], byte[]> transactionalProducer(String transactionalId, Map<String, Object> extra) {
        Map<String, Object> c = defaultProducerConfig();
        c.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, transactionalId);
        c.putAll(extra);
        return new KafkaProducer<>(c);
    }

    KafkaConsumer<byte[], byte[]> consumer(String isolation) {
        return broker.consumer(Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap(),
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation));
    }

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    /** Reads every partition from the beginning up to its end offset (the LSO for read_committed). */
    static List<ConsumerRecord<byte[], byte[]>> readToEnd(KafkaConsumer<byte[], byte[]> consumer,
            Collection<TopicPartition> partitions) {
        consumer.assign(partitions);
        consumer.seekToBeginning(partitions);
        Map<TopicPartition, Long> end = consumer.endOffsets(partitions, Duration.ofSeconds(30));
        List<ConsumerRecord<byte[], byte[]>> out = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            boolean done = true;
            for (TopicPartition tp : partitions) {
                done &= consumer.position(tp, Duration.ofSeconds(30)) >= end.get(tp);
            }
            if (done) {
                return out;
            }
            if (System.nanoTime() > deadline) {
                fail("did not reach the end offsets " + end + "; read " + out.size() + " records");
            }
            ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(200));
            records.forEach(out::add);
        }
    }

    static List<String> values(List<ConsumerRecord<byte[], byte[]>> records) {
        List<String> out = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            out.add(new String(r.value(), StandardCharsets.UTF_8));
        }
        return out;
    }

    /** Every value appears exactly once, and within a partition in send order. */
    static void assertExactlyOnce(List<ConsumerRecord<byte[], byte[]>> records, int expected) {
        Set<String> seen = new TreeSet<>();
        List<String> duplicates = new ArrayList<>();
        Map<Integer, Integer> lastIndex = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
            String value = new String(r.value(), StandardCharsets.UTF_8);
            if (!seen.add(value)) {
                duplicates.add(value + "@" + r.partition() + ":" + r.offset());
            }
            int index = Integer.parseInt(value.substring(value.indexOf('-') + 1));
            Integer previous = lastIndex.put(r.partition(), index);
            assertTrue(previous == null || previous < index,
                    "partition " + r.partition() + " has " + index + " after " + previous + " at offset " + r.offset());
        }
        assertEquals(List.of(), duplicates.subList(0, Math.min(20, duplicates.size())), "duplicates");
        assertEquals(expected, seen.size(), "distinct records");
        assertEquals(expected, records.size(), "records");
    }

    @Test
    void defaultProducerWritesEveryRecordExactlyOnce() throws Exception {
        String topic = "eos-default";
        int partitions = 6;
        int count = 100_000;
        try (Admin admin = broker.admin()) {
            TestRecords.createTopic(broker, admin, topic, partitions);
        }
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(defaultProducerConfig())) {
            List<Future<RecordMetadata>> acks = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, i % partitions, null, bytes("v-" + i))));
            }
            producer.flush();
            for (Future<RecordMetadata> ack : acks) {
                ack.get(60, TimeUnit.SECONDS);
            }
        }
        try (KafkaConsumer<byte[], byte[]> consumer = consumer("read_uncommitted")) {
            assertExactlyOnce(readToEnd(consumer, TestRecords.partitions(topic, partitions)), count);
        }
    }

    @Test
    void retriesAfterCutConnectionsWriteNoDuplicates() throws Exception {
        String topic = "eos-cuts";
        int partitions = 4;
        int count = 30_000;
        try (Admin admin = broker.admin()) {
            TestRecords.createTopic(broker, admin, topic, partitions);
        }
        int cutsBefore = proxy.cuts.get();
        // Small batches and no linger: many requests in flight, so cuts land between a write and its answer.
        Map<String, Object> c = defaultProducerConfig();
        c.put(ProducerConfig.BATCH_SIZE_CONFIG, 2_000);
        c.put(ProducerConfig.RECONNECT_BACKOFF_MS_CONFIG, 5);
        c.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 5);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(c)) {
            proxy.startCutting(40);
            try {
                List<Future<RecordMetadata>> acks = new ArrayList<>(count);
                for (int i = 0; i < count; i++) {
                    acks.add(producer.send(new ProducerRecord<>(topic, i % partitions, null, bytes("c-" + i))));
                    if (i % 1_000 == 0) {
                        Thread.sleep(10); // Spread the sends over many cuts.
                    }
                }
                producer.flush();
                for (Future<RecordMetadata> ack : acks) {
                    ack.get(120, TimeUnit.SECONDS);
                }
            } finally {
                proxy.stopCutting();
            }
        }
        assertTrue(proxy.cuts.get() - cutsBefore >= 5, "the proxy cut only " + (proxy.cuts.get() - cutsBefore)
                + " connections");
        try (KafkaConsumer<byte[], byte[]> consumer = consumer("read_uncommitted")) {
            assertExactlyOnce(readToEnd(consumer, TestRecords.partitions(topic, partitions)), count);
        }
    }

    @Test
    void readCommittedSeesOnlyCommittedTransactions() throws Exception {
        String topic = "eos-txn";
        int partitions = 3;
        int transactions = 20;
        int perTransaction = 90;
        try (Admin admin = broker.admin()) {
            TestRecords.createTopic(broker, admin, topic, partitions);
        }
        List<String> committed = new ArrayList<>();
        List<String> all = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = transactionalProducer("eos-interleaved", Map.of())) {
            producer.initTransactions();
            int index = 0;
            for (int t = 0; t < transactions; t++) {
                producer.beginTransaction();
                List<String> values = new ArrayList<>();
                for (int i = 0; i < perTransaction; i++) {
                    String value = "t" + t + "-" + index++;
                    values.add(value);
                    producer.send(new ProducerRecord<>(topic, i % partitions, null, bytes(value)));
                }
                all.addAll(values);
                if (t % 3 == 1) {
                    producer.flush();
                    producer.abortTransaction();
                } else {
                    producer.commitTransaction();
                    committed.addAll(values);
                }
            }
        }
        List<TopicPartition> tps = TestRecords.partitions(topic, partitions);
        try (KafkaConsumer<byte[], byte[]> consumer = consumer("read_committed")) {
            List<ConsumerRecord<byte[], byte[]>> records = readToEnd(consumer, tps);
            assertEquals(new TreeSet<>(committed), new TreeSet<>(values(records)), "read_committed values");
            assertExactlyOnce(records, committed.size());
        }
        try (KafkaConsumer<byte[], byte[]> consumer = consumer("read_uncommitted")) {
            List<ConsumerRecord<byte[], byte[]>> records = readToEnd(consumer, tps);
            assertEquals(new TreeSet<>(all), new TreeSet<>(values(records)), "read_uncommitted values");
            assertExactlyOnce(records, all.size());
        }
    }

    @Test
    void aNewProducerWithTheSameTransactionalIdFencesTheZombie() throws Exception {
        String topic = "eos-zombie";
        try (Admin admin = broker.admin()) {
            TestRecords.createTopic(broker, admin, topic, 2);
        }
        KafkaProducer<byte[], byte[]> zombie = transactionalProducer("eos-zombie-id", Map.of());
        zombie.initTransactions();
        zombie.beginTransaction();
        zombie.send(new ProducerRecord<>(topic, 0, null, bytes("zombie-0"))).get(30, TimeUnit.SECONDS);
        try (KafkaProducer<byte[], byte[]> successor = transactionalProducer("eos-zombie-id", Map.of())) {
            // Aborts the zombie's open transaction and bumps the epoch.
            successor.initTransactions();
            successor.beginTransaction();
            successor.send(new ProducerRecord<>(topic, 1, null, bytes("successor-1")));
            successor.commitTransaction();
            // The zombie's next write (or at the latest its commit) is refused with a fencing error.
            Exception refused = assertThrows(Exception.class, () -> {
                zombie.send(new ProducerRecord<>(topic, 0, null, bytes("zombie-2"))).get(30, TimeUnit.SECONDS);
                zombie.commitTransaction();
            });
            assertTrue(isFencing(refused), "not a fencing error: " + refused);
        } finally {
            zombie.close(Duration.ofSeconds(5));
        }
        try (KafkaConsumer<byte[], byte[]> consumer = consumer("read_committed")) {
            List<ConsumerRecord<byte[], byte[]>> records = readToEnd(consumer, TestRecords.partitions(topic, 2));
            assertEquals(List.of("successor-1"), values(records));
        }
    }

    static boolean isFencing(Throwable error) {
        for (Throwable cause = error; cause != null; cause = cause.getCause()) {
            if (cause instanceof InvalidProducerEpochException || cause instanceof ProducerFencedException) {
                return true;
            }
        }
        return false;
    }

    @Test
    void anExpiredTransactionIsAbortedAndItsProducerFenced() throws Exception {
        String topic = "eos-timeout";
        try (Admin admin = broker.admin()) {
            TestRecords.createTopic(broker, admin, topic, 1);
        }
        try (KafkaProducer<byte[], byte[]> producer = transactionalProducer("eos-timeout-id",
                Map.of(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 1_000))) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, 0, null, bytes("expired-0"))).get(30, TimeUnit.SECONDS);
            Thread.sleep(2_500);
            KafkaException refused = assertThrows(KafkaException.class, producer::commitTransaction);
            assertTrue(isFencing(refused), "not a fencing error: " + refused);
        }
        List<TopicPartition> tps = TestRecords.partitions(topic, 1);
        try (KafkaConsumer<byte[], byte[]> consumer = consumer("read_committed")) {
            // The abort marker moved the LSO to the end: nothing is visible, and the consumer is not stuck.
            assertEquals(List.of(), values(readToEnd(consumer, tps)));
            assertEquals(2L, consumer.endOffsets(tps).get(tps.get(0)), "record + abort marker");
        }
    }

    /**
     * A TCP proxy on 127.0.0.1 that forwards to the broker and, while cutting, closes every open connection at a
     * fixed interval, so requests die between being written and being answered.
     */
    static final class CuttingProxy implements AutoCloseable {
        final int port;
        final AtomicInteger cuts = new AtomicInteger();
        private final ConcurrentLinkedQueue<Socket> open = new ConcurrentLinkedQueue<>();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private volatile Thread cutter;
        private ServerSocket server;

        CuttingProxy(int port) {
            this.port = port;
        }

        void start(int targetPort) throws IOException {
            server = new ServerSocket();
            server.setReuseAddress(true);
            server.bind(new InetSocketAddress(FluxmqBroker.HOST, port));
            Thread acceptor = new Thread(() -> {
                while (running.get()) {
                    try {
                        Socket client = server.accept();
                        Socket upstream = new Socket(FluxmqBroker.HOST, targetPort);
                        client.setTcpNoDelay(true);
                        upstream.setTcpNoDelay(true);
                        open.add(client);
                        open.add(upstream);
                        pump(client, upstream);
                        pump(upstream, client);
                    } catch (IOException e) {
                        // Closed while stopping, or the broker restarting: the client retries.
                    }
                }
            }, "proxy-accept");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        private void pump(Socket from, Socket to) {
            Thread thread = new Thread(() -> {
                byte[] buffer = new byte[64 * 1024];
                try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                    int n;
                    while ((n = in.read(buffer)) >= 0) {
                        out.write(buffer, 0, n);
                        out.flush();
                    }
                } catch (IOException e) {
                    // Cut or closed.
                } finally {
                    closeQuietly(from);
                    closeQuietly(to);
                    open.remove(from);
                    open.remove(to);
                }
            }, "proxy-pump");
            thread.setDaemon(true);
            thread.start();
        }

        void startCutting(long intervalMs) {
            Thread thread = new Thread(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    try {
                        Thread.sleep(intervalMs);
                    } catch (InterruptedException e) {
                        return;
                    }
                    for (Socket socket : open) {
                        closeQuietly(socket);
                        cuts.incrementAndGet();
                    }
                }
            }, "proxy-cutter");
            thread.setDaemon(true);
            cutter = thread;
            thread.start();
        }

        void stopCutting() throws InterruptedException {
            Thread thread = cutter;
            if (thread != null) {
                thread.interrupt();
                thread.join();
            }
        }

        static void closeQuietly(Socket socket) {
            try {
                socket.close();
            } catch (IOException e) {
                // Already closed.
            }
        }

        @Override
        public void close() {
            running.set(false);
            try {
                if (server != null) {
                    server.close();
                }
            } catch (IOException e) {
                // Already closed.
            }
            for (Socket socket : open) {
                closeQuietly(socket);
            }
        }
    }
}
