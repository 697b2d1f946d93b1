# Sourced by bin/llmproxy and the bench scripts: picks a JDK 21 or newer and exports JAVA_HOME.
# shellcheck shell=bash

java_major() {
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n 1
}

# A JDK 21+: JAVA_HOME if set, else `java` on the PATH, else one under /usr/lib/jvm.
pick_java_home() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    return
  fi
  if command -v java >/dev/null 2>&1; then
    local v
    v="$(java_major java)"
    if [ -n "$v" ] && [ "$v" -ge 21 ] 2>/dev/null; then
      JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"
      export JAVA_HOME
      return
    fi
  fi
  local candidate
  for candidate in /usr/lib/jvm/*; do
    if [ -x "$candidate/bin/java" ] && [ -x "$candidate/bin/javac" ]; then
      local v
      v="$(java_major "$candidate/bin/java")"
      if [ -n "$v" ] && [ "$v" -ge 21 ] 2>/dev/null; then
        export JAVA_HOME="$candidate"
        return
      fi
    fi
  done
  echo "llmproxy needs a JDK 21 or newer: set JAVA_HOME to one." >&2
  exit 1
}

# The options the gateway's JVM gets on this JDK ($JAVA_HOME), by its feature release (JAVA_VERSION
# in its release file), in two arrays:
#   jdk_unsafe_opts: Netty reads and writes its buffers through sun.misc.Unsafe when the JDK allows
#     it, and through checked NIO calls otherwise (its default on JDK 25+): about 5% more CPU per
#     proxied request. The option exists from JDK 23 on.
#   jdk_trim_opts: the JVM hands memory that its own native allocations freed (the JIT's, the class
#     loader's) back to the system every 5 s, instead of glibc keeping it: about 7 MiB less resident
#     when idle. From JDK 22 on, and with glibc only (elsewhere the JVM would warn about it on
#     stdout). -XX:TrimNativeHeapInterval=0 after it turns it off.
jdk_runtime_options() {
  local major
  major="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$JAVA_HOME/release" 2>/dev/null || true)"
  jdk_unsafe_opts=()
  jdk_trim_opts=()
  if [ -n "$major" ] && [ "$major" -ge 23 ] 2>/dev/null; then
    jdk_unsafe_opts=(--sun-misc-unsafe-memory-access=allow)
  fi
  if [ -n "$major" ] && [ "$major" -ge 22 ] 2>/dev/null && getconf GNU_LIBC_VERSION >/dev/null 2>&1; then
    jdk_trim_opts=(-XX:TrimNativeHeapInterval=5000)
  fi
}
