package io.fluxmq.tests;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * JUnit 5 extension that runs one FluxMQ broker process for a test class.
 *
 * <p>Register it as a static field:
 *
 * <pre>
 * &#64;RegisterExtension
 * static final FluxmqBroker broker = FluxmqBroker.create();
 * </pre>
 *
 * <p>The binary comes from the system property {@code fluxmq.binary} (default
 * {@code ../target/release/fluxmq}, relative to the java-tests directory). The broker listens on
 * 127.0.0.1 on a free port, with a fresh temporary data directory. Its stdout and stderr go to
 * {@code target/fluxmq-logs/<TestClass>.log}; the tail of that file is printed when a test fails.
 */
public final class FluxmqBroker
        implements BeforeAllCallback, AfterAllCallback, BeforeEachCallback, AfterEachCallback, TestWatcher {

    public static final String HOST = "127.0.0.1";
    /** How long to wait for the port to accept connections; -Dfluxmq.readyTimeoutSeconds overrides (default 10). */
    public static final Duration READY_TIMEOUT = Duration.ofSeconds(
            Long.parseLong(System.getProperty("fluxmq.readyTimeoutSeconds", "10").isBlank()
                    ? "10" : System.getProperty("fluxmq.readyTimeoutSeconds", "10").trim()));
    public static final Duration STOP_TIMEOUT = Duration.ofSeconds(15);
    private static final int TAIL_LINES = 80;

    private final List<String> extraArgs = new ArrayList<>();
    private String cores = System.getProperty("fluxmq.cores", "").trim();
    private String logLevel = System.getProperty("fluxmq.logLevel", "").trim();

    private String name = "fluxmq";
    private Path binary;
    private Path dataDir;
    private Path logFile;
    private int port = -1;
    private Process process;
    /** True while the broker is down because a test (or this extension) stopped it on purpose. */
    private boolean stoppedOnPurpose;
    private int starts;

    private FluxmqBroker() {}

    public static FluxmqBroker create() {
        return new FluxmqBroker();
    }

    /** Start the broker with {@code --cores <list>}, e.g. "0,1". */
    public FluxmqBroker withCores(String coreList) {
        this.cores = coreList;
        return this;
    }

    /** Extra command-line arguments, e.g. {@code withArgs("--segment-bytes", "1048576")}. */
    public FluxmqBroker withArgs(String... args) {
        Collections.addAll(extraArgs, args);
        return this;
    }

    // ------------------------------------------------------------------ lifecycle callbacks

    @Override
    public void beforeAll(ExtensionContext context) throws Exception {
        name = context.getRequiredTestClass().getSimpleName();
        binary = resolveBinary();
        port = freePort();
        dataDir = Files.createTempDirectory("fluxmq-" + name + "-");
        Path logDir = Paths.get(System.getProperty("fluxmq.logdir", "target/fluxmq-logs")).toAbsolutePath();
        Files.createDirectories(logDir);
        logFile = logDir.resolve(name + ".log");
        Files.deleteIfExists(logFile);
        Files.createFile(logFile);
        start();
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        try {
            boolean crashed = process != null && !process.isAlive() && !stoppedOnPurpose;
            Integer crashCode = crashed ? process.exitValue() : null;
            int code = stop();
            if (crashed) {
                System.err.println(banner("broker had exited on its own (exit code " + crashCode + ")") + logTail(TAIL_LINES));
            } else if (code != 0 && code != Integer.MIN_VALUE) {
                System.err.println(banner("WARNING: broker exit code after SIGTERM was " + code + " (expected 0)")
                        + logTail(TAIL_LINES));
            }
        } finally {
            deleteRecursively(dataDir);
        }
    }

    @Override
    public void beforeEach(ExtensionContext context) throws Exception {
        if (process != null && !process.isAlive() && !stoppedOnPurpose) {
            // An earlier test crashed the broker. Start it again so the remaining tests still report something useful.
            System.err.println(banner("broker was dead before " + context.getDisplayName()
                    + " (exit code " + process.exitValue() + "); restarting it") + logTail(TAIL_LINES));
            start();
        } else if (stoppedOnPurpose) {
            start();
        }
    }

    @Override
    public void afterEach(ExtensionContext context) {
        if (process != null && !process.isAlive() && !stoppedOnPurpose) {
            throw new AssertionError("the fluxmq broker process exited during this test with exit code "
                    + process.exitValue() + "; log: " + logFile + "\n" + logTail(TAIL_LINES));
        }
    }

    @Override
    public void testFailed(ExtensionContext context, Throwable cause) {
        System.err.println(banner("test FAILED: " + context.getRequiredTestClass().getSimpleName() + " > "
                + context.getDisplayName() + " (" + cause + ")") + logTail(TAIL_LINES));
    }

    // ------------------------------------------------------------------ process control

    /** Starts the broker on the (already chosen) port and data dir, and waits until it accepts connections. */
    public synchronized void start() throws IOException, InterruptedException {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("broker already running");
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(binary.toString());
        cmd.add("--listen");
        cmd.add(HOST);
        cmd.add("--port");
        cmd.add(Integer.toString(port));
        cmd.add("--data-dir");
        cmd.add(dataDir.toString());
        if (!cores.isEmpty()) {
            cmd.add("--cores");
            cmd.add(cores);
        }
        if (!logLevel.isEmpty()) {
            cmd.add("--log-level");
            cmd.add(logLevel);
        }
        cmd.addAll(extraArgs);

        starts++;
        Files.writeString(logFile, "\n==== [java-tests " + LocalTime.now() + "] start #" + starts + ": "
                + String.join(" ", cmd) + "\n", StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND);

        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        pb.environment().putIfAbsent("RUST_BACKTRACE", "1");
        process = pb.start();
        stoppedOnPurpose = false;

        long deadline = System.nanoTime() + READY_TIMEOUT.toNanos();
        while (true) {
            if (!process.isAlive()) {
                throw new AssertionError("fluxmq exited with code " + process.exitValue()
                        + " before accepting connections; command: " + String.join(" ", cmd) + "\n" + logTail(TAIL_LINES));
            }
            if (acceptsConnections()) {
                return;
            }
            if (System.nanoTime() > deadline) {
                process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                throw new AssertionError("fluxmq did not accept connections on " + bootstrap() + " within "
                        + READY_TIMEOUT.toSeconds() + " s; command: " + String.join(" ", cmd) + "\n" + logTail(TAIL_LINES));
            }
            Thread.sleep(50);
        }
    }

    /**
     * Sends SIGTERM (Process.destroy()) and waits for the process to exit.
     *
     * @return the exit code, or Integer.MIN_VALUE if no process was running
     * @throws AssertionError if the broker did not exit within {@link #STOP_TIMEOUT} (it is then killed)
     */
    public synchronized int stop() throws InterruptedException {
        stoppedOnPurpose = true;
        if (process == null) {
            return Integer.MIN_VALUE;
        }
        if (!process.isAlive()) {
            return process.exitValue();
        }
        process.destroy(); // SIGTERM on Linux
        if (!process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            throw new AssertionError("fluxmq did not exit within " + STOP_TIMEOUT.toSeconds()
                    + " s of SIGTERM (killed with SIGKILL)\n" + logTail(TAIL_LINES));
        }
        return process.exitValue();
    }

    /** Stops (SIGTERM) and starts the broker again on the same port and data dir. Returns the stop exit code. */
    public int restart() throws IOException, InterruptedException {
        int code = stop();
        start();
        return code;
    }

    public boolean isRunning() {
        return process != null && process.isAlive();
    }

    private boolean acceptsConnections() {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(HOST, port), 200);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    // ------------------------------------------------------------------ accessors

    public String bootstrap() {
        return HOST + ":" + port;
    }

    public int port() {
        return port;
    }

    public Path dataDir() {
        return dataDir;
    }

    public Path logFile() {
        return logFile;
    }

    /** Last {@code n} lines of the broker log. */
    public String logTail(int n) {
        if (logFile == null || !Files.exists(logFile)) {
            return "(no broker log)";
        }
        try {
            List<String> lines = Files.readAllLines(logFile, StandardCharsets.UTF_8);
            List<String> tail = lines.subList(Math.max(0, lines.size() - n), lines.size());
            return String.join("\n", tail);
        } catch (IOException | UncheckedIOException e) {
            return "(could not read broker log " + logFile + ": " + e + ")";
        }
    }

    private String banner(String title) {
        return "\n---- fluxmq [" + name + "] " + title + " ---- log " + logFile + " (last " + TAIL_LINES + " lines):\n";
    }

    // ------------------------------------------------------------------ clients

    public Map<String, Object> adminConfig() {
        Map<String, Object> c = new HashMap<>();
        c.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        c.put(AdminClientConfig.CLIENT_ID_CONFIG, "java-tests-admin");
        c.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        c.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        return c;
    }

    public Map<String, Object> producerConfig() {
        Map<String, Object> c = new HashMap<>();
        c.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        c.put(ProducerConfig.CLIENT_ID_CONFIG, "java-tests-producer");
        c.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        c.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        c.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false);
        c.put(ProducerConfig.ACKS_CONFIG, "all");
        c.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        c.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        c.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        c.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        return c;
    }

    public Map<String, Object> consumerConfig() {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        c.put(ConsumerConfig.CLIENT_ID_CONFIG, "java-tests-consumer");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.CHECK_CRCS_CONFIG, true);
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 5_000);
        c.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 500);
        c.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        c.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        return c;
    }

    public Admin admin() {
        return Admin.create(adminConfig());
    }

    public KafkaProducer<byte[], byte[]> producer(Map<String, Object> overrides) {
        Map<String, Object> c = producerConfig();
        c.putAll(overrides);
        return new KafkaProducer<>(c);
    }

    public KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> overrides) {
        Map<String, Object> c = consumerConfig();
        c.putAll(overrides);
        return new KafkaConsumer<>(c);
    }

    public KafkaConsumer<byte[], byte[]> consumer() {
        return consumer(Map.of());
    }

    // ------------------------------------------------------------------ helpers

    private static Path resolveBinary() {
        String prop = System.getProperty("fluxmq.binary");
        if (prop == null || prop.isBlank()) {
            prop = "../target/release/fluxmq";
        }
        Path p = Paths.get(prop);
        if (!p.isAbsolute()) {
            p = Paths.get(System.getProperty("user.dir")).resolve(p);
        }
        p = p.normalize();
        if (!Files.isRegularFile(p) || !Files.isExecutable(p)) {
            throw new AssertionError("fluxmq binary not found or not executable: " + p
                    + " (set -Dfluxmq.binary=/path/to/fluxmq)");
        }
        return p;
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(false);
            s.bind(new InetSocketAddress(HOST, 0));
            return s.getLocalPort();
        }
    }

    private static void deleteRecursively(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Used by tests that want to mention the broker's options in messages. */
    public Optional<String> cores() {
        return cores.isEmpty() ? Optional.empty() : Optional.of(cores);
    }
}
