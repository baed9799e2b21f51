// Package embednats runs a NATS server with JetStream inside the process, for
// devstack: the newcomer's one command needs no NATS installed.
package embednats

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a running embedded server.
type Server struct {
	*server.Server
	URL string
}

// Start runs a JetStream-enabled server on host:port (port 0 picks a free
// one) with its file store under dir. It returns once the server accepts
// connections.
func Start(host string, port int, dir string) (*Server, error) {
	if port == 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	opts := &server.Options{
		ServerName: "payhook-devstack",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready on %s:%d", host, port)
	}
	return &Server{Server: srv, URL: "nats://" + net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// PortFree reports whether host:port can be listened on now.
func PortFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Stop shuts the server down and waits.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}
