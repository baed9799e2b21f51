package httpx_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/payhook/payhook/pkg/providers"
	"github.com/payhook/payhook/pkg/providers/internal/httpx"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("x", 11)))
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
			w.Write([]byte("short"))
		default:
			w.Write([]byte(strings.Repeat("x", 10)))
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		url      string
		ctx      context.Context
		hc       *http.Client
		status   int
		body     string
		code     string // APIError code, "" for none
		msg      string
		temp     bool
		ctxErr   error
		noSecret bool
	}{
		{name: "at the bound", url: srv.URL + "/ok?sign=SECRET", status: 200, body: strings.Repeat("x", 10)},
		{name: "non-2xx is returned, not an error", url: srv.URL + "/teapot", status: 418, body: "short"},
		{name: "over the bound", url: srv.URL + "/big?sign=SECRET", code: "too_large", msg: "answer over 10 bytes"},
		{name: "refused connection", url: closed.URL + "/x?sign=SECRET", code: "transport", msg: "request failed", temp: true},
		{name: "client timeout", url: srv.URL + "/slow?sign=SECRET", hc: &http.Client{Timeout: 20 * time.Millisecond}, code: "transport", msg: "timeout", temp: true},
		{name: "cancelled context", url: srv.URL + "/ok?sign=SECRET", ctx: cancelled, ctxErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			status, body, err := httpx.Do(httpx.Client(tt.hc, time.Second), req, "prov", "op", 10)
			if tt.code == "" && tt.ctxErr == nil {
				if err != nil || status != tt.status || string(body) != tt.body {
					t.Fatalf("got %d %q %v", status, body, err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q carries the URL", err)
			}
			if tt.ctxErr != nil {
				if !errors.Is(err, tt.ctxErr) || !strings.HasPrefix(err.Error(), "prov op: ") {
					t.Errorf("err %v, want wrapped %v", err, tt.ctxErr)
				}
				return
			}
			var ae *providers.APIError
			if !errors.As(err, &ae) || ae.Provider != "prov" || ae.Op != "op" || ae.Code != tt.code || ae.Message != tt.msg || ae.Temporary != tt.temp {
				t.Errorf("err %#v, want code %s msg %q temporary %v", err, tt.code, tt.msg, tt.temp)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		status    int
		ok, temp  bool
		code, msg string
	}{
		{200, true, false, "http_200", "OK"},
		{299, true, false, "http_299", ""},
		{302, false, false, "http_302", "Found"},
		{404, false, false, "http_404", "Not Found"},
		{429, false, true, "http_429", "Too Many Requests"},
		{500, false, true, "http_500", "Internal Server Error"},
		{503, false, true, "http_503", "Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			if httpx.OK(tt.status) != tt.ok || httpx.Temporary(tt.status) != tt.temp {
				t.Errorf("OK %v Temporary %v", httpx.OK(tt.status), httpx.Temporary(tt.status))
			}
			ae := httpx.StatusError("prov", "op", tt.status)
			if ae.HTTP != tt.status || ae.Code != tt.code || ae.Message != tt.msg || ae.Temporary != tt.temp || ae.Provider != "prov" || ae.Op != "op" {
				t.Errorf("StatusError = %#v", ae)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		name, base, want, err string
	}{
		{name: "trailing slashes", base: "https://api.example//", want: "https://api.example/p"},
		{name: "http", base: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080/p"},
		{name: "empty", base: "", err: "account has no base_url"},
		{name: "no scheme", base: "api.example", err: "base_url is not an http(s) URL"},
		{name: "ftp", base: "ftp://api.example", err: "base_url is not an http(s) URL"},
		{name: "no host", base: "http://", err: "base_url is not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httpx.Endpoint(tt.base, "/p")
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestClient(t *testing.T) {
	if hc := httpx.Client(nil, 7*time.Second); hc.Timeout != 7*time.Second {
		t.Errorf("default client timeout %v", hc.Timeout)
	}
	mine := &http.Client{}
	if httpx.Client(mine, time.Second) != mine {
		t.Error("given client replaced")
	}
}
