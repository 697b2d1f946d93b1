package io.llmproxy.api;

import static java.util.Objects.requireNonNull;

import io.netty.channel.EventLoop;
import io.netty.util.concurrent.EventExecutor;
import io.vertx.core.Context;
import io.vertx.core.Deployable;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.function.Supplier;

/**
 * Deployables placed one per event loop, in turn: the first on the loop Vert.x's round robin gives
 * next (as for any deployment), the others on the loops after it, wrapping around when there are
 * more instances than loops.
 *
 * <p>{@code deployVerticle} with {@code setInstances(n)} takes each instance's loop from the group's
 * round robin as the instance is created, and anything that takes a loop meanwhile (the first
 * instance's start, on its own thread, creating a client) shifts the rest: two of the gateway's
 * servers sometimes landed on one loop and the other loop stayed idle, which cost about a fifth of
 * the throughput in those runs. Here each context is bound to its loop before anything starts.
 *
 * <p>Unlike a deployment's, these contexts close nothing by themselves: each deployable closes what
 * it created (servers, clients, periodic timers) in its {@code undeploy}; Vert.x's close closes the rest.
 */
public final class PerEventLoop<D extends Deployable> {
  private final List<Context> contexts;
  private final List<D> deployed;

  private PerEventLoop(List<Context> contexts, List<D> deployed) {
    this.contexts = contexts;
    this.deployed = deployed;
  }

  /** The deployables, in the order they were created. */
  public List<D> deployed() {
    return deployed;
  }

  /**
   * Creates {@code instances} deployables with {@code factory} and deploys each on a context of its
   * own loop (its {@code deploy} runs there). Fails if any fails to deploy; those that did are
   * undeployed first.
   */
  public static <D extends Deployable> Future<PerEventLoop<D>> deploy(Vertx vertx, int instances,
      Supplier<? extends D> factory) {
    requireNonNull(factory, "factory");
    if (instances < 1) {
      throw new IllegalArgumentException("instances must be at least 1: " + instances);
    }
    VertxInternal v = (VertxInternal) requireNonNull(vertx, "vertx");
    List<EventLoop> loops = new ArrayList<>();
    for (EventExecutor e : v.nettyEventLoopGroup()) {
      loops.add((EventLoop) e);
    }
    List<Context> contexts = new ArrayList<>(instances);
    List<D> deployables = new ArrayList<>(instances);
    List<Future<?>> started = new ArrayList<>(instances);
    int first = loops.indexOf(v.nettyEventLoopGroup().next());
    for (int i = 0; i < instances; i++) {
      Context context = v.contextBuilder().withEventLoop(loops.get((first + i) % loops.size())).build();
      D d = factory.get();
      contexts.add(context);
      deployables.add(d);
      started.add(onContext(context, () -> d.deploy(context)));
    }
    PerEventLoop<D> all = new PerEventLoop<>(contexts, List.copyOf(deployables));
    return Future.join(started).transform(ar -> {
      if (ar.succeeded()) {
        return Future.succeededFuture(all);
      }
      List<Future<?>> undone = new ArrayList<>();
      for (int i = 0; i < instances; i++) {
        if (started.get(i).succeeded()) {
          undone.add(all.undeploy(i));
        }
      }
      return Future.join(undone).transform(ignored -> Future.failedFuture(ar.cause()));
    });
  }

  /** Undeploys every instance, each on its own context; completes when all have. */
  public Future<Void> undeploy() {
    List<Future<?>> stopped = new ArrayList<>(deployed.size());
    for (int i = 0; i < deployed.size(); i++) {
      stopped.add(undeploy(i));
    }
    return Future.join(stopped).mapEmpty();
  }

  private Future<?> undeploy(int i) {
    Context context = contexts.get(i);
    Deployable d = deployed.get(i);
    return onContext(context, () -> d.undeploy(context));
  }

  /** Runs {@code action} on {@code context}; its future, or its exception as a failed one. */
  private static Future<?> onContext(Context context, Callable<Future<?>> action) {
    Promise<Object> done = Promise.promise();
    context.runOnContext(ignored -> {
      try {
        action.call().onComplete(done);
      } catch (Exception e) {
        done.fail(e);
      }
    });
    return done.future();
  }
}
