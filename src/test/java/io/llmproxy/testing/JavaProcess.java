package io.llmproxy.testing;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * A main class of this project run as a separate JVM on the test's class path, for tests that need a
 * real process (a {@code kill -9}, a SIGTERM). Its standard output and error are collected line by
 * line as they come, so a test can wait for what it printed.
 */
public final class JavaProcess implements AutoCloseable {
  private final Process process;
  private final List<String> lines = new CopyOnWriteArrayList<>();

  private JavaProcess(Process process) {
    this.process = process;
    Thread reader = new Thread(this::readOutput, "java-process-output-" + process.pid());
    reader.setDaemon(true);
    reader.start();
  }

  /** Starts {@code mainClass} with {@code args}, with a small heap and a quick JIT to spare the CPU. */
  public static JavaProcess start(String mainClass, String... args) {
    return start(List.of(), mainClass, args);
  }

  /** Starts {@code mainClass} with {@code args}, and {@code jvmArgs} (system properties, say) for the JVM. */
  public static JavaProcess start(List<String> jvmArgs, String mainClass, String... args) {
    return startWithout(List.of(), jvmArgs, mainClass, args);
  }

  /**
   * As {@link #start(List, String, String...)}, with the class path's jars whose file names start
   * with one of {@code jarsLeftOut} left out (a library missing where the process runs).
   */
  public static JavaProcess startWithout(List<String> jarsLeftOut, List<String> jvmArgs, String mainClass,
      String... args) {
    String java = ProcessHandle.current().info().command().orElse("java");
    List<String> command = new ArrayList<>(List.of(java, "-Xmx256m", "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC"));
    command.addAll(jvmArgs);
    String classPath = Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
        .filter(entry -> jarsLeftOut.stream().noneMatch(Path.of(entry).getFileName().toString()::startsWith))
        .collect(Collectors.joining(File.pathSeparator));
    command.addAll(List.of("-cp", classPath, mainClass));
    command.addAll(List.of(args));
    try {
      return new JavaProcess(new ProcessBuilder(command).redirectErrorStream(true).start());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + mainClass, e);
    }
  }

  private void readOutput() {
    try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(),
        StandardCharsets.UTF_8))) {
      String line;
      while ((line = out.readLine()) != null) {
        lines.add(line);
      }
    } catch (IOException e) {
      lines.add("(output unreadable: " + e + ")");
    }
  }

  /** Every line printed so far. */
  public List<String> lines() {
    return List.copyOf(lines);
  }

  /**
   * Waits up to {@code timeout} for a line that {@code pattern} finds something in; the first such
   * line. Fails when none comes, with what the process printed.
   */
  public String awaitLine(java.util.regex.Pattern pattern, java.time.Duration timeout) {
    org.awaitility.Awaitility.await("a line matching " + pattern + " in " + lines).atMost(timeout)
        .until(() -> lines.stream().anyMatch(l -> pattern.matcher(l).find()));
    return lines.stream().filter(l -> pattern.matcher(l).find()).findFirst().orElseThrow();
  }

  public long pid() {
    return process.pid();
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** Waits up to {@code timeout} for the process to exit on its own; its exit code. */
  public int exitCode(java.time.Duration timeout) {
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new IllegalStateException("process " + process.pid() + " still running after " + timeout);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    return process.exitValue();
  }

  /** SIGKILL (what {@code kill -9} sends), and waits for the process to be gone. */
  public void kill() {
    process.destroyForcibly();
    try {
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        throw new IllegalStateException("process " + process.pid() + " still alive 30 s after SIGKILL");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    if (process.isAlive()) {
      kill();
    }
  }
}
