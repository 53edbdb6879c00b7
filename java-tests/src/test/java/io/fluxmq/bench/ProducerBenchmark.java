package io.fluxmq.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.Callback;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A multi-threaded producer benchmark on the official Java client: {@code threads} producers (one
 * {@link KafkaProducer} each, as separate applications would have), each sending records of
 * {@code recordBytes} as fast as the client lets it for {@code durationSeconds}, with null keys (the sticky
 * partitioner fills one batch at a time). Works against FluxMQ and Apache Kafka alike: idempotence is off,
 * because FluxMQ does not serve InitProducerId yet and the same client must drive both.
 *
 * <p>Settings come from system properties: {@code bench.bootstrap} (127.0.0.1:9092), {@code bench.topic},
 * {@code bench.partitions} (8), {@code bench.durationSeconds} (30), {@code bench.threads},
 * {@code bench.recordBytes}. Prints a summary and, last, one line of JSON. Exits 1 if any send failed.
 */
final class ProducerBenchmark {

    /** Send latencies kept per thread for percentiles: a bounded, sampled reservoir (like ProducerPerformance). */
    private static final int LATENCY_SAMPLES_MAX = 1_000_000;
    /** Longest run accepted: every run ends by itself. */
    private static final int DURATION_SECONDS_MAX = 3600;

    final String name;
    final String bootstrap;
    final String topic;
    final int partitions;
    final int durationSeconds;
    final int threads;
    final int recordBytes;
    final Properties producerProperties = new Properties();

    ProducerBenchmark(String name, int threadsDefault, int recordBytesDefault) {
        this.name = name;
        this.bootstrap = System.getProperty("bench.bootstrap", "127.0.0.1:9092");
        this.topic = System.getProperty("bench.topic", name);
        this.partitions = Integer.getInteger("bench.partitions", 8);
        this.durationSeconds = Math.min(Integer.getInteger("bench.durationSeconds", 30), DURATION_SECONDS_MAX);
        this.threads = Integer.getInteger("bench.threads", threadsDefault);
        this.recordBytes = Integer.getInteger("bench.recordBytes", recordBytesDefault);
        if (partitions < 1 || durationSeconds < 1 || threads < 1 || recordBytes < 1) {
            throw new IllegalArgumentException("partitions, duration, threads and record size must be positive");
        }
        producerProperties.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        producerProperties.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        producerProperties.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        producerProperties.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "false");
    }

    ProducerBenchmark set(String key, Object value) {
        producerProperties.put(key, String.valueOf(value));
        return this;
    }

    /** Creates the topic (an existing one is fine), runs the producers and prints the result. */
    int run() throws Exception {
        createTopic();
        boolean acknowledged = !"0".equals(producerProperties.getProperty(ProducerConfig.ACKS_CONFIG));
        System.out.printf(Locale.ROOT, "%s: %d threads, %d-byte records, %d s against %s, topic %s (%d partitions), %s%n",
                name, threads, recordBytes, durationSeconds, bootstrap, topic, partitions, producerProperties);
        AtomicLong sent = new AtomicLong();
        AtomicLong acked = new AtomicLong();
        AtomicLong errors = new AtomicLong();
        List<Worker> workers = new ArrayList<>();
        long started = System.nanoTime();
        long deadline = started + TimeUnit.SECONDS.toNanos(durationSeconds);
        for (int index = 0; index < threads; index++) {
            Worker worker = new Worker(index, deadline, sent, acked, errors);
            workers.add(worker);
            worker.start();
        }
        for (Worker worker : workers) {
            worker.join();
        }
        double seconds = (System.nanoTime() - started) / 1e9;
        long records = acknowledged ? acked.get() : sent.get();
        long[] latencies = mergeLatencies(workers);
        double recordsPerSecond = records / seconds;
        double megabytesPerSecond = records * (double) recordBytes / seconds / 1e6;
        System.out.printf(Locale.ROOT, "%,d records in %.2f s: %,.0f records/s, %.1f MB/s, %d errors%n",
                records, seconds, recordsPerSecond, megabytesPerSecond, errors.get());
        String latency = "null";
        if (acknowledged && latencies.length > 0) {
            System.out.printf(Locale.ROOT, "send-to-ack latency: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, max %.1f ms%n",
                    percentile(latencies, 0.5), percentile(latencies, 0.99), percentile(latencies, 0.999),
                    percentile(latencies, 1.0));
            latency = String.format(Locale.ROOT, "{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
                    percentile(latencies, 0.5), percentile(latencies, 0.99), percentile(latencies, 0.999),
                    percentile(latencies, 1.0));
        }
        System.out.printf(Locale.ROOT,
                "{\"benchmark\":\"%s\",\"threads\":%d,\"record_bytes\":%d,\"msgs\":%d,\"secs\":%.3f,"
                        + "\"msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"errors\":%d,\"latency_ms\":%s}%n",
                name, threads, recordBytes, records, seconds, recordsPerSecond, megabytesPerSecond, errors.get(),
                latency);
        return errors.get() == 0 ? 0 : 1;
    }

    private void createTopic() throws InterruptedException, ExecutionException {
        Properties properties = new Properties();
        properties.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(properties)) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get();
        } catch (ExecutionException error) {
            if (!(error.getCause() instanceof TopicExistsException)) {
                throw error;
            }
        }
    }

    private static long[] mergeLatencies(List<Worker> workers) {
        int total = 0;
        for (Worker worker : workers) {
            total += worker.latencyCount();
        }
        long[] merged = new long[total];
        int position = 0;
        for (Worker worker : workers) {
            System.arraycopy(worker.latenciesNanos, 0, merged, position, worker.latencyCount());
            position += worker.latencyCount();
        }
        Arrays.sort(merged);
        return merged;
    }

    private static double percentile(long[] sorted, double quantile) {
        int index = (int) Math.min(sorted.length - 1, Math.floor(quantile * sorted.length));
        return sorted[index] / 1e6;
    }

    /** One producer thread with its own client, payload and latency samples. */
    private final class Worker extends Thread {
        final long deadline;
        final AtomicLong sent;
        final AtomicLong acked;
        final AtomicLong errors;
        final long[] latenciesNanos = new long[LATENCY_SAMPLES_MAX];
        final AtomicLong latencySlots = new AtomicLong();

        Worker(int index, long deadline, AtomicLong sent, AtomicLong acked, AtomicLong errors) {
            super(name + "-producer-" + index);
            this.deadline = deadline;
            this.sent = sent;
            this.acked = acked;
            this.errors = errors;
        }

        int latencyCount() {
            return (int) Math.min(latencySlots.get(), LATENCY_SAMPLES_MAX);
        }

        @Override
        public void run() {
            // Letters, as ProducerPerformance uses: compressible about as much as typical text.
            Random random = new Random(getName().hashCode());
            byte[] value = new byte[recordBytes];
            for (int i = 0; i < value.length; i++) {
                value[i] = (byte) ('A' + random.nextInt(26));
            }
            Map<String, Object> config = new java.util.HashMap<>();
            producerProperties.forEach((key, setting) -> config.put((String) key, setting));
            config.put(ProducerConfig.CLIENT_ID_CONFIG, getName());
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(config)) {
                while (System.nanoTime() < deadline) {
                    long sendNanos = System.nanoTime();
                    producer.send(new ProducerRecord<>(topic, value), callback(sendNanos));
                    sent.incrementAndGet();
                }
                producer.flush();
            } catch (RuntimeException error) {
                errors.incrementAndGet();
                System.err.println(getName() + ": " + error);
            }
        }

        private Callback callback(long sendNanos) {
            return (metadata, exception) -> {
                if (exception != null) {
                    if (errors.incrementAndGet() <= 10) {
                        System.err.println(getName() + ": " + exception);
                    }
                    return;
                }
                acked.incrementAndGet();
                long slot = latencySlots.getAndIncrement();
                // Keep the first LATENCY_SAMPLES_MAX, then every 16th into a ring: bounded memory, late samples seen.
                if (slot < LATENCY_SAMPLES_MAX) {
                    latenciesNanos[(int) slot] = System.nanoTime() - sendNanos;
                } else if (slot % 16 == 0) {
                    latenciesNanos[(int) ((slot / 16) % LATENCY_SAMPLES_MAX)] = System.nanoTime() - sendNanos;
                }
            };
        }
    }
}
