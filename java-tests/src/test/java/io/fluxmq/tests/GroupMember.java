package io.fluxmq.tests;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * A consumer-group member run as its own JVM by the group tests, so a test can kill it with SIGKILL
 * (a real crash: no LeaveGroup, no final commit) or stop it cleanly by closing its stdin.
 *
 * <p>Arguments: bootstrap, group id, topic, then {@code key=value} consumer properties. It prints one
 * line per event on stdout: {@code S <partitions>} whenever its assignment changes, {@code R}/{@code A}
 * for revoke/assign callbacks, {@code C <partition> <offset> <value>} for every record whose offset
 * commit succeeded, {@code F <error>} for a failed commit (the batch is re-read: the positions go
 * back), and {@code X} after a clean close. A record is counted as consumed only once its commit
 * succeeded, which is what "consumed and committed exactly once" means for the tests.
 */
public final class GroupMember {
    private static volatile boolean stop;

    public static void main(String[] args) throws Exception {
        Map<String, Object> config = new HashMap<>();
        config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        config.put(ConsumerConfig.GROUP_ID_CONFIG, args[1]);
        config.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        config.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        config.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        config.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        config.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 200);
        for (int i = 3; i < args.length; i++) {
            String[] pair = args[i].split("=", 2);
            config.put(pair[0], pair[1]);
        }
        String topic = args[2];
        Thread watcher = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                while (in.readLine() != null) {
                    // Any input is ignored; end of input means "leave cleanly".
                }
            } catch (Exception ignored) {
                // Treated as end of input.
            }
            stop = true;
        });
        watcher.setDaemon(true);
        watcher.start();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(config)) {
            consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
                    emit("R " + indexes(partitions));
                }

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
                    emit("A " + indexes(partitions));
                }

                @Override
                public void onPartitionsLost(Collection<TopicPartition> partitions) {
                    emit("L " + indexes(partitions));
                }
            });
            String lastAssignment = null;
            while (!stop) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
                String assignment = indexes(consumer.assignment());
                if (!assignment.equals(lastAssignment)) {
                    emit("S " + assignment);
                    lastAssignment = assignment;
                }
                if (records.isEmpty()) {
                    continue;
                }
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                Map<TopicPartition, Long> first = new HashMap<>();
                for (ConsumerRecord<String, String> record : records) {
                    TopicPartition partition = new TopicPartition(record.topic(), record.partition());
                    offsets.put(partition, new OffsetAndMetadata(record.offset() + 1, "by " + args[1]));
                    first.putIfAbsent(partition, record.offset());
                }
                try {
                    consumer.commitSync(offsets);
                } catch (KafkaException e) {
                    emit("F " + e.getClass().getSimpleName());
                    // Not committed: read the batch again where we still own the partition.
                    for (Map.Entry<TopicPartition, Long> entry : first.entrySet()) {
                        if (consumer.assignment().contains(entry.getKey())) {
                            consumer.seek(entry.getKey(), entry.getValue());
                        }
                    }
                    continue;
                }
                StringBuilder lines = new StringBuilder();
                for (ConsumerRecord<String, String> record : records) {
                    lines.append("C ").append(record.partition()).append(' ').append(record.offset()).append(' ')
                            .append(record.value()).append('\n');
                }
                emitBlock(lines.toString());
            }
        }
        emit("X");
    }

    private static String indexes(Collection<TopicPartition> partitions) {
        Set<Integer> sorted = new TreeSet<>();
        for (TopicPartition partition : partitions) {
            sorted.add(partition.partition());
        }
        List<String> parts = new ArrayList<>();
        for (int index : sorted) {
            parts.add(Integer.toString(index));
        }
        return String.join(",", parts);
    }

    private static synchronized void emit(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static synchronized void emitBlock(String lines) {
        System.out.print(lines);
        System.out.flush();
    }
}
