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
