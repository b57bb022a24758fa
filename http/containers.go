package http

import (
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

// startRequest is the body of POST /containers/{id}.
type startRequest struct {
	BundlePath string `json:"bundlePath"`
	Checkpoint string `json:"checkpoint"`
	// Log bounds the container's log (bytes per file, files kept); what is
	// left out is the daemon's default.
	Log containerlog.Limits `json:"log"`
}

// stateResponse is the answer of GET /state.
type stateResponse struct {
	Containers []*actors.ContainerInfo `json:"containers"`
	Machine    machine                 `json:"machine"`
}

// containerList is the answer of GET /containers.
type containerList struct {
	Containers []*actors.ContainerInfo `json:"containers"`
}

func (s *Server) state(c *gin.Context) {
	// The supervisor's snapshot: no message, no wait, however busy the
	// actors are.
	st := s.cfg.Supervisor.State()
	c.JSON(nethttp.StatusOK, stateResponse{Containers: nonNil(st.Containers), Machine: s.machine})
}

func (s *Server) listContainers(c *gin.Context) {
	c.JSON(nethttp.StatusOK, containerList{Containers: nonNil(s.cfg.Supervisor.State().Containers)})
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil(cs []*actors.ContainerInfo) []*actors.ContainerInfo {
	if cs == nil {
		return []*actors.ContainerInfo{}
	}
	return cs
}

func (s *Server) startContainer(c *gin.Context) {
	var req startRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	if req.BundlePath == "" && req.Checkpoint == "" {
		fail(c, fmt.Errorf("field \"bundlePath\" is required: %w", runtime.ErrInvalidArgument))
		return
	}
	if err := req.Log.Validate(); err != nil {
		fail(c, fmt.Errorf("field \"log\": %v: %w", err, runtime.ErrInvalidArgument))
		return
	}
	id := c.Param("id")
	res, err := s.cfg.Supervisor.StartContainer(c.Request.Context(),
		actors.StartContainer{ID: id, BundlePath: req.BundlePath, Checkpoint: req.Checkpoint, Log: req.Log})
	if res != nil {
		s.metrics.started(res, err)
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Location", "/containers/"+id)
	c.JSON(nethttp.StatusCreated, res.Container)
}

func (s *Server) getContainer(c *gin.Context) {
	info, err := s.cfg.Supervisor.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, info)
}

// patchRequest is the body of PATCH /containers/{id}. Each field is a change;
// they apply in the order resources, signal, status.
type patchRequest struct {
	Status    *string            `json:"status"`
	Signal    *Signal            `json:"signal"`
	Resources *runtime.Resources `json:"resources"`
}

func (s *Server) patchContainer(c *gin.Context) {
	var req patchRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	if req.Status != nil && *req.Status != string(runtime.Paused) && *req.Status != string(runtime.Running) {
		fail(c, fmt.Errorf("field \"status\": %q: must be \"paused\" or \"running\": %w", *req.Status, runtime.ErrInvalidArgument))
		return
	}
	ctx, id, sup := c.Request.Context(), c.Param("id"), s.cfg.Supervisor
	if req.Resources != nil {
		if err := sup.Update(ctx, id, *req.Resources); err != nil {
			fail(c, err)
			return
		}
	}
	if req.Signal != nil {
		if err := sup.Kill(ctx, id, syscall.Signal(*req.Signal)); err != nil {
			fail(c, err)
			return
		}
	}
	var err error
	var info actors.ContainerInfo
	switch {
	case req.Status != nil && *req.Status == string(runtime.Paused):
		info, err = sup.Pause(ctx, id)
	case req.Status != nil:
		info, err = sup.Resume(ctx, id)
	default:
		info, err = sup.Get(ctx, id)
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, info)
}

func (s *Server) deleteContainer(c *gin.Context) {
	force := false
	if v := c.Query("force"); v != "" {
		var err error
		if force, err = strconv.ParseBool(v); err != nil {
			fail(c, fmt.Errorf("query force=%q: want true or false: %w", v, runtime.ErrInvalidArgument))
			return
		}
	}
	if err := s.cfg.Supervisor.Delete(c.Request.Context(), c.Param("id"), force); err != nil {
		fail(c, err)
		return
	}
	c.Status(nethttp.StatusNoContent)
}

func (s *Server) stats(c *gin.Context) {
	st, err := s.cfg.Supervisor.Stats(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, st)
}

// checkpointRequest is the body of POST /containers/{id}/checkpoint/{name}.
type checkpointRequest struct {
	Exit        bool `json:"exit"`
	TCP         bool `json:"tcp"`
	UnixSockets bool `json:"unixSockets"`
	Shell       bool `json:"shell"`
}

func (s *Server) createCheckpoint(c *gin.Context) {
	var req checkpointRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	cp, err := s.cfg.Supervisor.Checkpoint(c.Request.Context(), c.Param("id"), c.Param("name"),
		runtime.CheckpointOptions{Exit: req.Exit, TCP: req.TCP, UnixSockets: req.UnixSockets, Shell: req.Shell})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusCreated, cp)
}

func (s *Server) listCheckpoints(c *gin.Context) {
	list, err := s.cfg.Supervisor.Checkpoints(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, list)
}

func (s *Server) deleteCheckpoint(c *gin.Context) {
	if err := s.cfg.Supervisor.DeleteCheckpoint(c.Request.Context(), c.Param("id"), c.Param("name")); err != nil {
		fail(c, err)
		return
	}
	c.Status(nethttp.StatusNoContent)
}

// exportCheckpoint streams a checkpoint as a tar archive. An error before
// the first byte (an unknown checkpoint) is answered as usual; a failure
// later cuts the stream, which the tar format (its end marker) lets the
// reader notice.
func (s *Server) exportCheckpoint(c *gin.Context) {
	c.Header("Content-Type", "application/x-tar")
	if err := s.cfg.Supervisor.ExportCheckpoint(c.Request.Context(), c.Param("id"), c.Param("name"), c.Writer); err != nil {
		if c.Writer.Written() {
			_ = c.Error(err)
			panic(nethttp.ErrAbortHandler) // a half archive must not look whole
		}
		c.Writer.Header().Del("Content-Type")
		fail(c, err)
	}
}

// MaxArchiveSize bounds an imported checkpoint archive.
const MaxArchiveSize = checkpoint.DefaultMaxArchive

// importCheckpoint reads a tar archive into a new checkpoint: 201 with it.
func (s *Server) importCheckpoint(c *gin.Context) {
	body := nethttp.MaxBytesReader(c.Writer, c.Request.Body, MaxArchiveSize+1<<20)
	cp, err := s.cfg.Supervisor.ImportCheckpoint(c.Request.Context(), c.Param("id"), c.Param("name"), body, MaxArchiveSize)
	if err != nil {
		var tooLarge *nethttp.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = fmt.Errorf("checkpoint archive larger than %d bytes: %w", MaxArchiveSize, errBodyTooLarge)
		}
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusCreated, cp)
}
