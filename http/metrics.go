package http

import (
	"errors"
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/errclass"
)

// metrics are the daemon's Prometheus figures.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	starts    *prometheus.CounterVec
	startWait prometheus.Histogram
	startRun  prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry, sup *actors.Supervisor) *metrics {
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_http_requests_total", Help: "API requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "troupe_http_request_duration_seconds", Help: "API request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route"}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "troupe_container_starts_total", Help: "Container starts by result.",
		}, []string{"result"}),
		startWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "troupe_container_start_queue_seconds", Help: "Time a start waited for admission.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		startRun: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "troupe_container_start_seconds", Help: "Time the runtime took to start a container once admitted.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	containers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "troupe_containers", Help: "Containers the daemon knows.",
	}, func() float64 { return float64(len(sup.State().Containers)) })
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.starts, m.startWait, m.startRun, containers,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		// A collector registered twice (a shared registry) is not an error
		// worth failing a daemon for.
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			panic(err)
		}
	}
	return m
}

func (m *metrics) handler() nethttp.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// request counts one answered request. route is the pattern of the route
// it matched ("unmatched" for none), so bounded by the routes registered.
// The method is bounded here: a client may send any token as the method,
// with or without the token, and each value as sent would be a series kept
// for ever (20,000 requests with random methods made 20,000 series and
// 70 MB).
func (m *metrics) request(method, route string, status int, took time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(took.Seconds())
}

// methodLabel is method when it is one of HTTP's standard methods, else
// "other".
func methodLabel(method string) string {
	switch method {
	case nethttp.MethodGet, nethttp.MethodHead, nethttp.MethodPost, nethttp.MethodPut, nethttp.MethodPatch,
		nethttp.MethodDelete, nethttp.MethodConnect, nethttp.MethodOptions, nethttp.MethodTrace:
		return method
	}
	return "other"
}

func (m *metrics) started(r *actors.StartContainerResult, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
		if errors.Is(err, errclass.InvalidArgument) || errors.Is(err, errclass.AlreadyExists) {
			result = "refused"
		}
	}
	m.starts.WithLabelValues(result).Inc()
	m.startWait.Observe(r.Queued.Seconds())
	if err == nil {
		m.startRun.Observe(r.Started.Seconds())
	}
}
