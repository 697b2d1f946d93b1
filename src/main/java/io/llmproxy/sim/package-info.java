/**
 * The simulated backend: a vLLM-like, OpenAI-compatible server for tests, the demo and load
 * benchmarks. Start one with {@link io.llmproxy.sim.Simulator#start}; shape it with
 * {@link io.llmproxy.sim.SimulatorOptions}; see what it saw in
 * {@link io.llmproxy.sim.Simulator#requests()} and {@link io.llmproxy.sim.Simulator#stats()}.
 *
 * <h2>What it answers</h2>
 * <ul>
 *   <li>{@code POST /v1/chat/completions}, {@code /v1/completions}: streamed ({@code "stream":
 *       true}) as vLLM does, or whole. Output is {@code max_completion_tokens}, else
 *       {@code max_tokens} (finish reason {@code length}), else the options' {@code tokens}
 *       (finish reason {@code stop}). Usage: prompt tokens are the body's length / 4 (at least
 *       1). A stream sends the role chunk (chat only), one chunk per token, a usage chunk when
 *       {@code stream_options.include_usage} is true, then {@code data: [DONE]}.</li>
 *   <li>{@code POST /v1/embeddings}: 8 numbers per input, after the ttft.</li>
 *   <li>TGI's {@code POST /generate} and {@code /generate_stream}
 *       ({@code parameters.max_new_tokens}).</li>
 *   <li>{@code GET /v1/models}, {@code GET /health} (200, or 503 when not healthy, empty body).</li>
 *   <li>{@code GET /sim/stats}: {@code {"name", "served", "completed", "disconnected", "failed",
 *       "hung", "connections_opened", "connections_closed", "open_connections",
 *       "disconnected_requests": [{id, path, model, chunks_sent, after_ms}],
 *       "served_requests": [{id, path, model, stream, status, chunks_sent, completed}]}} (the
 *       last 100). It is the one path not recorded.</li>
 *   <li>Anything else: 404 in OpenAI's error shape; a body that is not a JSON object: 400.</li>
 * </ul>
 *
 * <h2>Token texts</h2>
 * Token {@code i} (from 0) is the {@code i % 8}-th of {@code " Hello"}, {@code " from"},
 * {@code " <name>"}, {@code ","}, {@code " the"}, {@code " simulated"}, {@code " backend"},
 * {@code "."}; so the output names the backend that produced it.
 *
 * <h2>Timing</h2>
 * A stream sends nothing, not even its head, until the ttft (unless early headers); then the role
 * chunk and the first token back to back, each following token one itl after the previous was
 * due, and usage and {@code [DONE]} right after the last. A whole response comes after
 * {@code ttft + (tokens - 1) * itl}. Timers have millisecond resolution and never fire early.
 *
 * <h2>Disconnects</h2>
 * A client closing its connection (or resetting its HTTP/2 stream) before the response ended is
 * recorded at once ({@code clientDisconnected}, {@code disconnectedAtNanos}), during the ttft
 * wait, a hang or a stream, and stops the response.
 */
package io.llmproxy.sim;
