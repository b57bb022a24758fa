package http

import (
	"fmt"
	nethttp "net/http"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime"
)

func (s *Server) validatePool(c *gin.Context) {
	if err := runtime.ValidID("pool name", c.Param("name")); err != nil {
		fail(c, err)
	}
}

// setPool creates (201) or resizes (200) a warm pool.
func (s *Server) setPool(c *gin.Context) {
	var req api.PoolRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	if req.Size == nil {
		fail(c, fmt.Errorf("pool %q: size is required: %w", c.Param("name"), errclass.InvalidArgument))
		return
	}
	var p api.Pool
	var created bool
	var err error
	switch {
	case req.Image != "" && req.BundlePath != "":
		err = fmt.Errorf("pool %q: fields \"bundlePath\" and \"image\": give one: %w", c.Param("name"), errclass.InvalidArgument)
	case req.Image != "":
		var start *actors.ImageStart
		if start, err = imageStart(req.ImageStart); err == nil {
			p, created, err = s.cfg.Supervisor.SetImagePool(c.Request.Context(), c.Param("name"), start, *req.Size)
		}
	default:
		if f := imageFieldsWithoutImage(req.ImageStart); f != "" {
			err = fmt.Errorf("pool %q: field %q is for a pool of an image, and \"image\" is missing: %w", c.Param("name"), f, errclass.InvalidArgument)
			break
		}
		p, created, err = s.cfg.Supervisor.SetPool(c.Request.Context(), c.Param("name"), req.BundlePath, *req.Size)
	}
	if err != nil {
		fail(c, err)
		return
	}
	code := nethttp.StatusOK
	if created {
		code = nethttp.StatusCreated
	}
	c.JSON(code, p)
}

func (s *Server) getPool(c *gin.Context) {
	p, err := s.cfg.Supervisor.Pool(c.Request.Context(), c.Param("name"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, p)
}

func (s *Server) listPools(c *gin.Context) {
	pools, err := s.cfg.Supervisor.Pools(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, pools)
}

func (s *Server) deletePool(c *gin.Context) {
	if err := s.cfg.Supervisor.DeletePool(c.Request.Context(), c.Param("name")); err != nil {
		fail(c, err)
		return
	}
	c.Status(nethttp.StatusNoContent)
}
