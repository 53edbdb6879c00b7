package io.fluxmq.tests;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * The parent's handle on one {@link GroupMember} JVM: starts it, parses its event lines, and stops it
 * cleanly (stdin closed) or kills it (SIGKILL).
 */
final class GroupMemberProcess implements AutoCloseable {
    /** One committed record: partition, offset, value. */
    record Committed(int partition, long offset, String value) {}

    /** An event line with the parent's receive time. */
    record Event(long nanos, String line) {}

    final String name;
    private final Process process;
    private final Thread reader;
    private final List<Committed> committed = Collections.synchronizedList(new ArrayList<>());
    private final List<Event> events = Collections.synchronizedList(new ArrayList<>());
    private volatile Set<Integer> assignment = Set.of();
    final long startedNanos;

    private GroupMemberProcess(String name, Process process) {
        this.name = name;
        this.process = process;
        this.startedNanos = System.nanoTime();
        this.reader = new Thread(this::readLines, "member-" + name);
        this.reader.setDaemon(true);
        this.reader.start();
    }

    static GroupMemberProcess start(String name, String bootstrap, String group, String topic, String... properties)
            throws IOException {
        List<String> command = new ArrayList<>();
        command.add(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        command.add("-Xmx128m");
        command.add("-XX:TieredStopAtLevel=1");
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add(GroupMember.class.getName());
        command.add(bootstrap);
        command.add(group);
        command.add(topic);
        command.add("client.id=" + name);
        command.addAll(Arrays.asList(properties));
        Path logDir = Paths.get("target", "fluxmq-logs").toAbsolutePath();
        Files.createDirectories(logDir);
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.redirectError(ProcessBuilder.Redirect.appendTo(logDir.resolve("member-" + name + ".log").toFile()));
        return new GroupMemberProcess(name, builder.start());
    }

    private void readLines() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                long now = System.nanoTime();
                if (line.startsWith("C ")) {
                    String[] parts = line.split(" ", 4);
                    committed.add(new Committed(Integer.parseInt(parts[1]), Long.parseLong(parts[2]), parts[3]));
                    continue;
                }
                events.add(new Event(now, line));
                if (line.startsWith("S")) {
                    String list = line.length() > 2 ? line.substring(2) : "";
                    assignment = list.isEmpty() ? Set.of()
                            : Arrays.stream(list.split(",")).map(Integer::parseInt).collect(Collectors.toCollection(TreeSet::new));
                }
            }
        } catch (IOException ignored) {
            // The process is gone.
        }
    }

    Set<Integer> assignment() {
        return assignment;
    }

    List<Committed> committed() {
        synchronized (committed) {
            return new ArrayList<>(committed);
        }
    }

    List<Event> events() {
        synchronized (events) {
            return new ArrayList<>(events);
        }
    }

    /** Lines of the given kind ("S", "R", "A", "L", "F"). */
    List<String> lines(String kind) {
        return events().stream().map(Event::line).filter(line -> line.equals(kind) || line.startsWith(kind + " "))
                .collect(Collectors.toList());
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** Clean stop: closes stdin, so the member leaves the group, and waits for it to exit. */
    void stop() throws IOException, InterruptedException {
        process.getOutputStream().close();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError(name + " did not stop within 30 s");
        }
        reader.join(5_000);
    }

    /** A crash: SIGKILL, no LeaveGroup, no final commit. */
    void kill() throws InterruptedException {
        process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        reader.join(5_000);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            kill();
        }
    }
}
