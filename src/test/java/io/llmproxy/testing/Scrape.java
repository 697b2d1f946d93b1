package io.llmproxy.testing;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One scrape of a gateway's Prometheus text, for asserting on metrics by their exported names and
 * labels ({@code llmproxy_hedges_total{outcome="sent"}}), as a dashboard would read them.
 */
public final class Scrape {
  /** One sample line. */
  public record Series(String name, Map<String, String> labels, double value) {
    @Override
    public String toString() {
      return name + labels + " " + value;
    }
  }

  private final List<Series> series;

  private Scrape(List<Series> series) {
    this.series = series;
  }

  /** Scrapes the gateway's registry now. */
  public static Scrape of(TestGateway gw) {
    return of(gw.gateway);
  }

  /** Scrapes {@code gateway}'s registry now. */
  public static Scrape of(io.llmproxy.server.Gateway gateway) {
    return new Scrape(parse(gateway.metrics().scrape()));
  }

  /**
   * The sum over the samples of {@code name} whose labels include every {@code label, value} pair
   * given; 0 when none matches (a counter not yet created counts nothing).
   */
  public double value(String name, String... labelPairs) {
    return matching(name, labelPairs).stream().mapToDouble(Series::value).sum();
  }

  /** The samples of {@code name} whose labels include the pairs given. */
  public List<Series> matching(String name, String... labelPairs) {
    if (labelPairs.length % 2 != 0) {
      throw new IllegalArgumentException("label pairs: name, value, ...");
    }
    return series.stream().filter(s -> {
      if (!s.name().equals(name)) {
        return false;
      }
      for (int i = 0; i < labelPairs.length; i += 2) {
        if (!labelPairs[i + 1].equals(s.labels().get(labelPairs[i]))) {
          return false;
        }
      }
      return true;
    }).toList();
  }

  /** Prometheus text format: {@code name{label="value",...} value [timestamp]}; comments skipped. */
  public static List<Series> parse(String text) {
    List<Series> out = new ArrayList<>();
    for (String line : text.split("\n")) {
      line = line.strip();
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      int i = 0;
      while (i < line.length() && line.charAt(i) != '{' && line.charAt(i) != ' ') {
        i++;
      }
      String name = line.substring(0, i);
      Map<String, String> labels = new LinkedHashMap<>();
      if (i < line.length() && line.charAt(i) == '{') {
        i++;
        while (line.charAt(i) != '}') {
          int eq = line.indexOf('=', i);
          String label = line.substring(i, eq).strip();
          i = eq + 2; // past ="
          StringBuilder v = new StringBuilder();
          while (line.charAt(i) != '"') {
            char ch = line.charAt(i++);
            if (ch == '\\') {
              char e = line.charAt(i++);
              v.append(e == 'n' ? '\n' : e);
            } else {
              v.append(ch);
            }
          }
          i++; // closing quote
          labels.put(label, v.toString());
          if (line.charAt(i) == ',') {
            i++;
          }
        }
        i++; // }
      }
      String[] rest = line.substring(i).strip().split("\\s+");
      out.add(new Series(name, labels, Double.parseDouble(rest[0])));
    }
    return out;
  }
}
