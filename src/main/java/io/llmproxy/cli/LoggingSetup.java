package io.llmproxy.cli;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import io.llmproxy.config.GatewayConfig.LogFormat;
import io.llmproxy.config.GatewayConfig.LoggingConfig;
import java.nio.charset.StandardCharsets;
import org.slf4j.LoggerFactory;

/**
 * Applies {@code logging} (SPEC §8) to Logback: JSON lines (or plain text) on stdout at the
 * configured level, with Netty and Vert.x quieter. The access log does not go through Logback; see
 * {@code io.llmproxy.server.AccessLog}.
 */
public final class LoggingSetup {
  private LoggingSetup() {}

  public static void apply(LoggingConfig config) {
    if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx)) {
      return;
    }
    ctx.reset();
    boolean json = config.format() == LogFormat.JSON;

    ConsoleAppender<ILoggingEvent> console = new ConsoleAppender<>();
    console.setContext(ctx);
    console.setName("console");
    console.setEncoder(json ? jsonEncoder(ctx) : pattern(ctx, "%d{HH:mm:ss.SSS} %-5level %logger{20} - %msg%n"));
    console.start();

    ctx.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).addAppender(console);
    level(config.level());
  }

  /** Sets {@code logging.level} (at start, and on a config reload), with Netty and Vert.x at WARN or above. */
  public static void level(String level) {
    if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx)) {
      return;
    }
    Logger root = ctx.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    root.setLevel(Level.toLevel(level, Level.INFO));
    Level libraries = root.getLevel().isGreaterOrEqual(Level.WARN) ? root.getLevel() : Level.WARN;
    ctx.getLogger("io.netty").setLevel(libraries);
    ctx.getLogger("io.vertx").setLevel(libraries);
  }

  /** Flushes the asynchronous appenders; call last on the way out. */
  public static void stop() {
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext ctx) {
      ctx.stop();
    }
  }

  private static Encoder<ILoggingEvent> pattern(LoggerContext ctx, String pattern) {
    PatternLayoutEncoder e = new PatternLayoutEncoder();
    e.setContext(ctx);
    e.setPattern(pattern);
    e.setCharset(StandardCharsets.UTF_8);
    e.start();
    return e;
  }

  private static Encoder<ILoggingEvent> jsonEncoder(LoggerContext ctx) {
    JsonLineLayout layout = new JsonLineLayout();
    layout.setContext(ctx);
    layout.start();
    LayoutWrappingEncoder<ILoggingEvent> e = new LayoutWrappingEncoder<>();
    e.setContext(ctx);
    e.setLayout(layout);
    e.setCharset(StandardCharsets.UTF_8);
    e.start();
    return e;
  }
}
