package http

import (
	"context"
	"math/rand/v2"
	nethttp "net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsLabelsBounded: whatever clients send, with or without the
// token, the request metrics keep a bounded set of series. Each label value
// as sent would be a series for ever: 20,000 requests with random methods
// grew a daemon by 70 MB and its /metrics to 20,003 series.
func TestMetricsLabelsBounded(t *testing.T) {
	const token = "0123456789abcdef-metrics"
	e := newEnv(t, envOptions{token: token})
	anon := *e
	anon.token = ""
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rnd.IntN(len(letters))]
		}
		return string(b)
	}
	for _, tc := range []struct {
		name   string
		client *env
		method func() string
		path   func() string
	}{
		{"random methods, no token", &anon, func() string { return word(200) }, func() string { return "/containers" }},
		{"random methods, token", e, func() string { return word(200) }, func() string { return "/containers/x" }},
		{"random paths, no token", &anon, func() string { return "GET" }, func() string { return "/" + word(100) }},
		{"random paths, token", e, func() string { return "GET" }, func() string { return "/" + word(50) + "/" + word(50) }},
		{"random ids, token", e, func() string { return "DELETE" }, func() string { return "/containers/" + word(20) }},
		{"lower-case methods, token", e, func() string { return strings.ToLower(word(3)) }, func() string { return "/healthz" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 300 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp := tc.client.send(ctx, tc.method(), tc.path(), "")
				resp.Body.Close()
				cancel()
			}
		})
	}

	known := map[string]map[string]bool{"method": {"other": true}, "route": {"unmatched": true}}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"} {
		known["method"][m] = true
	}
	for _, r := range New(Config{Supervisor: e.sup, Logger: quietLogger()}).engine.Routes() {
		known["route"][r.Path] = true
	}
	r := e.do("GET", "/metrics", "")
	if r.status != nethttp.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	// Series by metric, a histogram's buckets counted once.
	series := map[string]map[string]bool{}
	unknown := 0
	for _, line := range strings.Split(string(r.body), "\n") {
		name, labels, ok := strings.Cut(line, "{")
		if !ok || !strings.HasPrefix(name, "troupe_http_") {
			continue
		}
		name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		labels, _, _ = strings.Cut(labels, "}")
		var set []string
		for _, pair := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(pair, "=")
			v = strings.Trim(v, `"`)
			if k == "le" {
				continue
			}
			set = append(set, pair)
			if known, ok := known[k]; ok && !known[v] {
				if unknown++; unknown <= 3 {
					t.Errorf("%s has label %s=%.40q, not one of a known set", name, k, v)
				}
			}
		}
		if series[name] == nil {
			series[name] = map[string]bool{}
		}
		series[name][strings.Join(set, ",")] = true
	}
	// Methods × routes × statuses actually seen is far below this; every
	// request above getting a series of its own is far above it.
	const bound = 50
	for name, sets := range series {
		n := len(sets)
		t.Logf("%s: %d series", name, n)
		if n > bound {
			t.Errorf("%s: %d series after %d requests; want at most %d", name, n, 6*300, bound)
		}
	}
	if unknown > 3 {
		t.Errorf("and %d more labels not of a known set", unknown-3)
	}
	if len(series["troupe_http_requests_total"]) == 0 {
		t.Errorf("no troupe_http_requests_total series in /metrics:\n%.2000s", r.body)
	}
}
