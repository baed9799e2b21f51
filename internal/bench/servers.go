package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/payhook/payhook/internal/config"
	"github.com/payhook/payhook/internal/ingress"
	"github.com/payhook/payhook/internal/ops"
)

// ServeNATS runs a nats-server with JetStream on file storage in dir,
// listening on 127.0.0.1:port, until ctx ends. The benchmark runs it as a
// child process (payhook-bench serve-nats) so its CPU and memory are its own.
func ServeNATS(ctx context.Context, port int, dir string) error {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true, HTTPHost: "127.0.0.1",
	})
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		return errors.New("nats server not ready")
	}
	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}

// EchoBaseline is the baseline handler: echo v4, the same route as
// ingress, reading the body and answering 200 "success" — what any HTTP
// endpoint costs on this machine before doing any work.
func EchoBaseline() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.POST("/v1/callbacks/:provider/:account/:kind", func(c echo.Context) error {
		if _, err := io.Copy(io.Discard, c.Request().Body); err != nil {
			return err
		}
		return c.String(http.StatusOK, "success")
	})
	e.GET("/readyz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
}

// ServeEcho serves EchoBaseline on addr until ctx ends, with the same
// http.Server settings as ingress.
func ServeEcho(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := ops.NewServer(EchoBaseline(), ops.DefaultTimeouts)
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ServeIngress runs ingress through ingress.Run — exactly what cmd/ingress
// runs — and, when cpuProfile is set, writes a CPU profile of the whole
// process until ctx ends. (The real binaries can do the same with
// PAYHOOK_CPUPROFILE_DIR.)
func ServeIngress(ctx context.Context, configPath, cpuProfile string) error {
	cfg, err := config.Load(configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return ingress.Run(ctx, cfg, ingress.RunOptions{Log: log})
}
