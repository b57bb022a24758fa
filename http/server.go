package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	nethttp "net/http"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/criu"
)

// Config configures a Server.
type Config struct {
	// Supervisor is where every request goes; required.
	Supervisor *actors.Supervisor
	// Version is what GET /version reports.
	Version string
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token string
	// Logger logs each request; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the daemon's metrics; nil makes a private one.
	Registry *prometheus.Registry
	// Criu, when set, tells the CRIU self-test's verdict, which GET /healthz
	// and GET /version show.
	Criu func() criu.Verdict
	// BodyIdleTimeout bounds how long a request body may send nothing;
	// 0 means BodyIdleTimeout.
	BodyIdleTimeout time.Duration
	// Insecure, when set, says how this daemon is open to anyone (a TCP
	// listener without a token, by --insecure-tcp); GET /healthz shows it.
	Insecure string
}

// Server is troupe's REST API v1 on gin. Handlers decode, validate and send
// messages to the actors; they hold no container logic.
type Server struct {
	cfg     Config
	token   [sha256.Size]byte // the token's digest, when there is one
	engine  *gin.Engine
	metrics *metrics
	machine api.Machine
}

// releaseMode sets gin's process-wide mode once: gin keeps it in a package
// variable, and servers made concurrently (tests) would race on it.
var releaseMode sync.Once

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.BodyIdleTimeout <= 0 {
		cfg.BodyIdleTimeout = BodyIdleTimeout
	}
	s := &Server{cfg: cfg, machine: readMachine()}
	if cfg.Token != "" {
		s.token = sha256.Sum256([]byte(cfg.Token))
	}
	s.metrics = newMetrics(cfg.Registry, cfg.Supervisor)
	releaseMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	e := gin.New()
	e.HandleMethodNotAllowed = true
	// Route on the escaped path, so that /containers/a%2Fb reaches the id
	// check (400, an invalid id "a/b") rather than missing every route.
	e.UseRawPath = true
	e.Use(s.recovery, s.bodyDeadline, s.logRequests, s.authenticate)
	e.NoRoute(func(c *gin.Context) {
		fail(c, fmt.Errorf("no such endpoint: %s %s: %w", c.Request.Method, c.Request.URL.Path, errclass.NotFound))
	})
	e.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(nethttp.StatusMethodNotAllowed, api.Error{Error: fmt.Sprintf("method %s not allowed on %s", c.Request.Method, c.Request.URL.Path), Code: api.MethodNotAllowed})
	})

	e.GET("/healthz", s.healthz)
	e.GET("/version", s.version)
	e.GET("/metrics", gin.WrapH(s.metrics.handler()))
	e.GET("/state", s.state)
	e.GET("/events", s.events)

	e.GET("/containers", s.listContainers)
	c := e.Group("/containers/:id", s.validateID)
	c.POST("", s.startContainer)
	c.GET("", s.getContainer)
	c.PATCH("", s.patchContainer)
	c.DELETE("", s.deleteContainer)
	c.PUT("/processes", s.execProcess)
	c.PUT("/process", s.execProcess)
	c.POST("/process/:pid", s.signalProcess)
	c.POST("/processes/:pid", s.signalProcess)
	c.GET("/processes/:pid/attach", s.attachProcess)
	c.GET("/processes/:pid/wait", s.waitProcess)
	c.GET("/stats", s.stats)
	c.GET("/logs", s.logs)
	c.GET("/checkpoint", s.listCheckpoints)
	c.POST("/checkpoint/:name", s.validateName, s.createCheckpoint)
	c.DELETE("/checkpoint/:name", s.validateName, s.deleteCheckpoint)
	c.GET("/checkpoint/:name/archive", s.validateName, s.exportCheckpoint)
	c.PUT("/checkpoint/:name/archive", s.validateName, s.importCheckpoint)

	e.POST("/images", s.pullImage)
	e.POST("/images/import", s.importImages)
	e.GET("/images", s.listImages)
	// A name holds slashes ("127.0.0.1:5000/team/app:1"): the rest of the
	// path is the reference.
	e.GET("/images/*ref", s.getImage)
	e.DELETE("/images/*ref", s.removeImage)

	e.GET("/pools", s.listPools)
	p := e.Group("/pools/:name", s.validatePool)
	p.PUT("", s.setPool)
	p.GET("", s.getPool)
	p.DELETE("", s.deletePool)
	s.engine = e
	return s
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() nethttp.Handler { return s.engine }

// recovery answers a panicking handler with a 500 and keeps serving.
func (s *Server) recovery(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == nethttp.ErrAbortHandler {
				panic(r)
			}
			s.cfg.Logger.Error("handler panicked", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", r)
			c.AbortWithStatusJSON(nethttp.StatusInternalServerError, api.Error{Error: fmt.Sprintf("internal error: %v", r), Code: api.Internal})
		}
	}()
	c.Next()
}

// logRequests logs each request once it is answered, and counts it.
func (s *Server) logRequests(c *gin.Context) {
	t0 := time.Now()
	c.Next()
	status := c.Writer.Status()
	took := time.Since(t0)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.metrics.request(c.Request.Method, route, status, took)
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"method", c.Request.Method, "path", c.Request.URL.Path, "status", status, "took", took}
	if id := c.Param("id"); id != "" {
		attrs = append(attrs, "id", id)
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, "err", c.Errors.Last().Error())
	}
	s.cfg.Logger.Log(c.Request.Context(), level, "request", attrs...)
}

// authenticate checks the bearer token when one is configured. The scheme
// is case-insensitive and one or more spaces follow it (RFC 7235). The
// token and the guess are compared as SHA-256 digests, in constant time:
// compared as they are, a guess of another length is refused at once and
// one of the token's length only after a look at every byte, which tells
// the token's length to whoever times the answers.
func (s *Server) authenticate(c *gin.Context) {
	if s.cfg.Token == "" {
		return
	}
	scheme, got, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	sum := sha256.Sum256([]byte(strings.TrimLeft(got, " ")))
	if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="troupe"`)
		fail(c, fmt.Errorf("missing or wrong bearer token: %w", errUnauthorized))
	}
}

// validateID refuses an id that could not name a container before it goes
// anywhere near a path or an actor name.
func (s *Server) validateID(c *gin.Context) {
	if err := runtime.ValidID("container id", c.Param("id")); err != nil {
		fail(c, err)
	}
}

// validateName does the same for checkpoint names.
func (s *Server) validateName(c *gin.Context) {
	if err := runtime.ValidID("checkpoint name", c.Param("name")); err != nil {
		fail(c, err)
	}
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(nethttp.StatusOK, api.Health{Status: "ok", Insecure: s.cfg.Insecure, Criu: s.criuVerdict()})
}

// criuVerdict is the CRIU self-test's verdict, if the server knows it.
func (s *Server) criuVerdict() *api.CriuVerdict {
	if s.cfg.Criu == nil {
		return nil
	}
	v := s.cfg.Criu()
	return &api.CriuVerdict{Status: v.Status, Path: v.Path, Version: v.Version, Error: v.Error, Took: v.Took}
}

func (s *Server) version(c *gin.Context) {
	c.JSON(nethttp.StatusOK, api.Version{Version: s.cfg.Version, Go: goruntime.Version(), Runc: runcVersion(), Criu: s.criuVerdict()})
}

// runcVersion is the version of the libcontainer module linked in, from
// the build information, so that it cannot go stale.
func runcVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, m := range info.Deps {
		if m.Path == "github.com/opencontainers/runc" {
			if m.Replace != nil {
				m = m.Replace
			}
			return m.Version
		}
	}
	return "unknown"
}

// readMachine reads the usable CPUs (this process's affinity) and the RAM.
func readMachine() api.Machine {
	m := api.Machine{CPUs: goruntime.NumCPU()}
	var info syscall.Sysinfo_t
	if syscall.Sysinfo(&info) == nil {
		m.Memory = uint64(info.Totalram) * uint64(info.Unit)
	}
	return m
}
