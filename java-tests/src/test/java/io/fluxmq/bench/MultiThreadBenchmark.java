package io.fluxmq.bench;

import org.apache.kafka.clients.producer.ProducerConfig;

/**
 * Four producer threads, acks=1, 128 KiB batches, linger 1 ms, 800-byte records: the throughput a
 * multi-threaded application with tuned batching gets from one broker, with send-to-ack latency.
 *
 * <pre>mvn -B -f java-tests/pom.xml -Pbenchmarks test-compile exec:exec@multi-thread -Dbench.bootstrap=127.0.0.1:9092</pre>
 */
public final class MultiThreadBenchmark {

    private MultiThreadBenchmark() {}

    public static void main(String[] args) throws Exception {
        int status = new ProducerBenchmark("multi-thread", 4, 800)
                .set(ProducerConfig.ACKS_CONFIG, "1")
                .set(ProducerConfig.BATCH_SIZE_CONFIG, 128 * 1024)
                .set(ProducerConfig.LINGER_MS_CONFIG, 1)
                .run();
        System.exit(status);
    }
}
