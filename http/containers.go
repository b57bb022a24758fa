package http

import (
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
	"github.com/troupe-run/troupe/runtime/checkpoint"
	"github.com/troupe-run/troupe/runtime/containerlog"
)

func (s *Server) state(c *gin.Context) {
	// The supervisor's snapshot: no message, no wait, however busy the
	// actors are.
	c.JSON(nethttp.StatusOK, api.State{Containers: containers(s.cfg.Supervisor.State()), Machine: s.machine})
}

func (s *Server) listContainers(c *gin.Context) {
	c.JSON(nethttp.StatusOK, api.ContainerList{Containers: containers(s.cfg.Supervisor.State())})
}

// containers is the snapshot's list, encoding as [] when empty.
func containers(st *actors.State) []*api.Container {
	if st.Containers == nil {
		return []*api.Container{}
	}
	return st.Containers
}

func (s *Server) startContainer(c *gin.Context) {
	var req api.StartRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	start := actors.StartContainer{ID: c.Param("id"), BundlePath: req.BundlePath, Checkpoint: req.Checkpoint}
	switch {
	case req.Image != "" && (req.BundlePath != "" || req.Checkpoint != ""):
		fail(c, fmt.Errorf("field \"image\" starts from an image: leave \"bundlePath\" and \"checkpoint\" out: %w", errclass.InvalidArgument))
		return
	case req.Image != "":
		var err error
		if start.Image, err = imageStart(req.ImageStart); err != nil {
			fail(c, err)
			return
		}
	case req.BundlePath == "" && req.Checkpoint == "":
		fail(c, fmt.Errorf("field \"bundlePath\" (or \"image\") is required: %w", errclass.InvalidArgument))
		return
	default:
		fields := req.ImageStart
		if req.Checkpoint != "" {
			// A restore of a container that ran from an image mounts that
			// image again, and may pull it; the rest comes from the
			// checkpoint.
			if req.Pull != "" && req.Pull != api.PullNever && req.Pull != api.PullMissing {
				fail(c, fmt.Errorf("field \"pull\": %q: a restore takes %q or %q (its checkpoint names the image by digest): %w",
					req.Pull, api.PullNever, api.PullMissing, errclass.InvalidArgument))
				return
			}
			start.Pull, fields.Pull = req.Pull, ""
		}
		// A bundle has its own process, limits and mounts: what only a
		// start from an image takes would be silently ignored.
		if f := imageFieldsWithoutImage(fields); f != "" {
			fail(c, fmt.Errorf("field %q is for a start from an image (field \"image\"); a bundle's config.json says it: %w", f, errclass.InvalidArgument))
			return
		}
	}
	if req.Stdin || req.Terminal || req.ConsoleSize != nil {
		o, err := stdioOptions(req.Stdin, req.Terminal, req.ConsoleSize)
		if err != nil {
			fail(c, err)
			return
		}
		start.Stdio = &o
	}
	if j := req.Join; j != nil {
		start.Join = make(map[runtime.Namespace]string, 3)
		for ns, other := range map[runtime.Namespace]string{
			runtime.NetworkNamespace: j.Network, runtime.IPCNamespace: j.IPC, runtime.UTSNamespace: j.UTS} {
			if other != "" {
				start.Join[ns] = other
			}
		}
	}
	start.Log = containerlog.Limits{MaxSize: req.Log.MaxSize, MaxFiles: req.Log.MaxFiles}
	if err := start.Log.Validate(); err != nil {
		fail(c, fmt.Errorf("field \"log\": %v: %w", err, errclass.InvalidArgument))
		return
	}
	id := start.ID
	res, err := s.cfg.Supervisor.StartContainer(c.Request.Context(), start)
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

func (s *Server) patchContainer(c *gin.Context) {
	var req api.PatchRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	if req.Status != nil && *req.Status != api.Paused && *req.Status != api.Running {
		fail(c, fmt.Errorf("field \"status\": %q: must be \"paused\" or \"running\": %w", *req.Status, errclass.InvalidArgument))
		return
	}
	ctx, id, sup := c.Request.Context(), c.Param("id"), s.cfg.Supervisor
	if r := req.Resources; r != nil {
		if err := sup.Update(ctx, id, runtime.Resources{Memory: r.Memory, CPUShares: r.CPUShares, Pids: r.Pids}); err != nil {
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
	var info api.Container
	switch {
	case req.Status != nil && *req.Status == api.Paused:
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
			fail(c, fmt.Errorf("query force=%q: want true or false: %w", v, errclass.InvalidArgument))
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

func (s *Server) createCheckpoint(c *gin.Context) {
	var req api.CheckpointRequest
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
