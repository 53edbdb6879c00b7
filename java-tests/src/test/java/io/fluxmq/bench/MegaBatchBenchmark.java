package io.fluxmq.bench;

import org.apache.kafka.clients.producer.ProducerConfig;

/**
 * Eight producer threads, acks=0, 1 MiB batches, linger 15 ms, lz4: fire-and-forget throughput with the
 * largest batches a default broker accepts (max.message.bytes is 1 MiB + 12). With acks=0 the client
 * counts a record once it is written to the socket, so this measures how fast the broker drains
 * connections; there is no latency to report.
 *
 * <pre>mvn -B -f java-tests/pom.xml -Pbenchmarks test-compile exec:exec@mega-batch -Dbench.bootstrap=127.0.0.1:9092</pre>
 */
public final class MegaBatchBenchmark {

    private MegaBatchBenchmark() {}

    public static void main(String[] args) throws Exception {
        int status = new ProducerBenchmark("mega-batch", 8, 100)
                .set(ProducerConfig.ACKS_CONFIG, "0")
                .set(ProducerConfig.BATCH_SIZE_CONFIG, 1024 * 1024)
                .set(ProducerConfig.LINGER_MS_CONFIG, 15)
                .set(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4")
                // Room for a full 1 MiB batch plus the request around it.
                .set(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 2 * 1024 * 1024)
                .run();
        System.exit(status);
    }
}
