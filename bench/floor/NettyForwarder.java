import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.LastHttpContent;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The floor of a JVM forwarder on this machine: raw Netty 4.2 (the one in llmproxy's jar), one
 * event loop per core on io_uring where the kernel has it, as llmproxy's {@code transport: auto},
 * else epoll ({@code -Dfloor.transport=epoll} asks for epoll), HTTP/1.1 keep-alive on both sides,
 * each client connection's upstream connection taken from a pool on its own loop, the decoded
 * request and response objects passed through as they are. No routing, no error handling, no
 * metrics, no log: a measuring stick for bench/floor.sh, not a proxy.
 *
 *   java -cp target/llmproxy.jar bench/floor/NettyForwarder.java LISTEN_PORT BACKEND_PORT
 */
public class NettyForwarder {
  static int backendPort;
  static final boolean URING =
      IoUring.isAvailable() && !"epoll".equals(System.getProperty("floor.transport"));
  static final Class<? extends Channel> CLIENT =
      URING ? IoUringSocketChannel.class : EpollSocketChannel.class;
  static final Map<EventLoop, ArrayDeque<Channel>> IDLE = new ConcurrentHashMap<>();

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    backendPort = Integer.parseInt(args[1]);
    var loops = new MultiThreadIoEventLoopGroup(Runtime.getRuntime().availableProcessors(),
        URING ? IoUringIoHandler.newFactory() : EpollIoHandler.newFactory());
    Class<? extends ServerChannel> server =
        URING ? IoUringServerSocketChannel.class : EpollServerSocketChannel.class;
    new ServerBootstrap().group(loops).channel(server)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline().addLast(new HttpServerCodec(), new Front());
          }
        }).bind("127.0.0.1", port).sync();
    System.out.println("netty forwarder on 127.0.0.1:" + port + " to 127.0.0.1:" + backendPort
        + (URING ? " (io_uring)" : " (epoll)"));
  }

  /** A client connection: its request goes to a pooled upstream connection on the same loop. */
  static final class Front extends ChannelInboundHandlerAdapter {
    Channel client;
    Channel upstream;
    final ArrayDeque<Object> pending = new ArrayDeque<>();

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      client = ctx.channel();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof HttpRequest req) {
        req.headers().remove(HttpHeaderNames.CONNECTION);
        Channel idle = IDLE.computeIfAbsent(ctx.channel().eventLoop(), k -> new ArrayDeque<>()).pollFirst();
        if (idle != null && idle.isActive()) {
          attach(idle);
          upstream.write(msg);
          return;
        }
        pending.add(msg);
        new Bootstrap().group(ctx.channel().eventLoop()).channel(CLIENT)
            .option(ChannelOption.TCP_NODELAY, true)
            .handler(new ChannelInitializer<SocketChannel>() {
              @Override
              protected void initChannel(SocketChannel ch) {
                ch.pipeline().addLast(new HttpClientCodec(), new Back());
              }
            })
            .connect("127.0.0.1", backendPort).addListener((ChannelFutureListener) f -> {
              if (!f.isSuccess()) {
                client.close();
                return;
              }
              attach(f.channel());
              Object m;
              while ((m = pending.poll()) != null) {
                upstream.write(m);
              }
              upstream.flush();
            });
      } else if (upstream != null && pending.isEmpty()) {
        upstream.write(msg);
        if (msg instanceof LastHttpContent) {
          upstream.flush();
        }
      } else {
        pending.add(msg);
      }
    }

    void attach(Channel c) {
      upstream = c;
      ((Back) c.pipeline().last()).front = this;
    }
  }

  /** An upstream connection: the response goes to the client; at its end the connection is pooled. */
  static final class Back extends ChannelInboundHandlerAdapter {
    Front front;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      Front f = front;
      if (msg instanceof LastHttpContent) {
        f.client.writeAndFlush(msg);
        front = null;
        f.upstream = null;
        IDLE.get(ctx.channel().eventLoop()).addFirst(ctx.channel());
      } else if (msg instanceof HttpContent) {
        f.client.writeAndFlush(msg);
      } else {
        f.client.write(msg);
      }
    }
  }
}
