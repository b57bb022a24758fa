package http

import (
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/troupe-run/troupe/actors"
	"github.com/troupe-run/troupe/api"
	"github.com/troupe-run/troupe/errclass"
	"github.com/troupe-run/troupe/runtime/image"
	"github.com/troupe-run/troupe/runtime/image/imagespec"
	"github.com/troupe-run/troupe/runtime/image/pull"
)

// pullImage pulls an image and answers with a stream of api.PullProgress,
// one JSON object per line, the last one holding the image or the error.
//
// The status goes with the first line, and the first line waits for the
// first progress report: a pull that fails before any layer moves (no
// image store, a registry that does not know the name, wrong credentials)
// is answered as any other request that failed, with its status. Only a
// failure after the stream has begun is told in its last line.
func (s *Server) pullImage(c *gin.Context) {
	var req api.PullRequest
	if err := decode(c.Writer, c.Request, &req); err != nil {
		fail(c, err)
		return
	}
	if req.Reference == "" {
		fail(c, fmt.Errorf("field \"reference\" is required: %w", errclass.InvalidArgument))
		return
	}
	if _, err := image.Normalize(req.Reference); err != nil {
		fail(c, err)
		return
	}
	st := &pullStream{w: c.Writer}
	img, err := s.cfg.Supervisor.PullImage(c.Request.Context(), req.Reference, image.PullOptions{Progress: st.progress, Credentials: credentials(req.Auth)})
	st.mu.Lock()
	defer st.mu.Unlock()
	st.done = true
	if !st.started {
		if err != nil {
			fail(c, err)
			return
		}
		st.start()
	}
	line := api.PullProgress{Image: &img}
	if err != nil {
		_ = c.Error(err) // for the request log
		_, code := answerOf(err)
		line = api.PullProgress{Error: &api.Error{Error: err.Error(), Code: code}}
	}
	st.write(line)
}

// pullStream writes a pull's progress lines. The puller serialises its
// progress calls, but the last line comes from the handler's goroutine;
// mu orders them, and done keeps a late report from following the last
// line.
type pullStream struct {
	w       gin.ResponseWriter
	mu      sync.Mutex
	started bool
	done    bool
	enc     *json.Encoder
}

func (p *pullStream) progress(pr pull.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	if !p.started {
		p.start()
	}
	p.write(api.PullProgress{Layer: pr.Digest, Total: pr.Total, Done: pr.Done})
}

// start sends the status and headers, p.mu held.
func (p *pullStream) start() {
	p.started = true
	p.w.Header().Set("Content-Type", "application/x-ndjson")
	p.w.Header().Set("Cache-Control", "no-cache")
	p.w.WriteHeader(nethttp.StatusOK)
	p.enc = json.NewEncoder(p.w)
}

// write sends one line and flushes it to the client, p.mu held. A client
// that went away ends the request's context, and with it the pull: the
// write error says nothing more.
func (p *pullStream) write(line api.PullProgress) {
	if p.enc.Encode(line) == nil {
		p.w.Flush()
	}
}

func (s *Server) listImages(c *gin.Context) {
	list, err := s.cfg.Supervisor.Images()
	if err != nil {
		fail(c, err)
		return
	}
	if list == nil {
		list = []api.Image{}
	}
	c.JSON(nethttp.StatusOK, api.ImageList{Images: list})
}

// imageRef is the {ref} of /images/{ref}: a name, which may hold slashes
// and a colon ("127.0.0.1:5000/team/app:1"), or a digest ("sha256:...").
func imageRef(c *gin.Context) (string, error) {
	ref := strings.TrimPrefix(c.Param("ref"), "/")
	if ref == "" {
		return "", fmt.Errorf("an image name or digest is required after /images/: %w", errclass.InvalidArgument)
	}
	return ref, nil
}

func (s *Server) getImage(c *gin.Context) {
	ref, err := imageRef(c)
	if err != nil {
		fail(c, err)
		return
	}
	if c.Query("archive") != "" {
		s.exportImage(c, ref)
		return
	}
	img, err := s.cfg.Supervisor.Image(ref)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, img)
}

// exportImage answers GET /images/{ref}?archive=oci with the image as an
// OCI image layout in a tar archive.
func (s *Server) exportImage(c *gin.Context, ref string) {
	if a := c.Query("archive"); a != "oci" {
		fail(c, fmt.Errorf("archive=%q: the one format is oci: %w", a, errclass.InvalidArgument))
		return
	}
	// The image is looked up first: a name that is not there is a 404,
	// not a cut archive.
	if _, err := s.cfg.Supervisor.Image(ref); err != nil {
		fail(c, err)
		return
	}
	c.Header("Content-Type", "application/x-tar")
	if err := s.cfg.Supervisor.ExportImage(c.Request.Context(), ref, c.Writer); err != nil {
		if c.Writer.Written() {
			_ = c.Error(err)
			panic(nethttp.ErrAbortHandler) // a half archive must not look whole
		}
		c.Writer.Header().Del("Content-Type")
		fail(c, err)
	}
}

// MaxImageArchiveSize bounds an imported image archive.
const MaxImageArchiveSize = 64 << 30

// importImages reads an OCI image layout in a tar archive (POST
// /images/import): 201 with the images it held.
func (s *Server) importImages(c *gin.Context) {
	body := nethttp.MaxBytesReader(c.Writer, c.Request.Body, MaxImageArchiveSize)
	imgs, err := s.cfg.Supervisor.ImportImages(c.Request.Context(), body)
	if err != nil {
		var tooLarge *nethttp.MaxBytesError
		if errors.As(err, &tooLarge) {
			err = fmt.Errorf("image archive larger than %d bytes: %w", int64(MaxImageArchiveSize), errBodyTooLarge)
		}
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusCreated, api.ImageList{Images: imgs})
}

// removeImage removes a name, or with a digest the image and all its
// names, and answers with what was removed. An image that containers use
// is refused (409 failed_precondition) unless force=true.
func (s *Server) removeImage(c *gin.Context) {
	ref, err := imageRef(c)
	if err != nil {
		fail(c, err)
		return
	}
	force := false
	if v := c.Query("force"); v != "" {
		if force, err = strconv.ParseBool(v); err != nil {
			fail(c, fmt.Errorf("query force=%q: want true or false: %w", v, errclass.InvalidArgument))
			return
		}
	}
	img, err := s.cfg.Supervisor.RemoveImage(ref, force)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(nethttp.StatusOK, img)
}

// imageStart is the actors' start from an image that req asks for.
func imageStart(req api.ImageStart) (*actors.ImageStart, error) {
	switch req.Pull {
	case "", api.PullNever, api.PullMissing, api.PullAlways:
	default:
		return nil, fmt.Errorf("field \"pull\": %q: want %q, %q or %q: %w",
			req.Pull, api.PullNever, api.PullMissing, api.PullAlways, errclass.InvalidArgument)
	}
	o := imagespec.Overrides{
		Entrypoint: req.Entrypoint, Args: req.Args, Env: req.Env, Cwd: req.Cwd, User: req.User,
		Hostname: req.Hostname, ReadOnlyRoot: req.ReadOnlyRoot,
		Resources: imagespec.Resources{Memory: req.Memory, CPUShares: req.CPUShares,
			CPUQuota: req.CPUQuota, CPUPeriod: req.CPUPeriod, Pids: req.Pids},
		CapAdd: req.CapAdd, CapDrop: req.CapDrop,
	}
	for _, m := range req.Mounts {
		o.Mounts = append(o.Mounts, imagespec.Mount{Type: imagespec.MountType(m.Type), Destination: m.Destination,
			Source: m.Source, ReadOnly: m.ReadOnly, Size: m.Size, Mode: m.Mode, Exec: m.Exec})
	}
	return &actors.ImageStart{Ref: req.Image, Pull: req.Pull, Overrides: o, Credentials: credentials(req.Auth)}, nil
}

// credentials are a request's registry credentials, for the puller.
func credentials(a *api.RegistryAuth) *pull.Credentials {
	if a == nil {
		return nil
	}
	return &pull.Credentials{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
}

// imageFieldsWithoutImage names the first field of req that only a start
// from an image takes, or "".
func imageFieldsWithoutImage(req api.ImageStart) string {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"pull", req.Pull != ""}, {"auth", req.Auth != nil}, {"entrypoint", req.Entrypoint != nil}, {"args", len(req.Args) > 0},
		{"env", len(req.Env) > 0}, {"cwd", req.Cwd != ""}, {"user", req.User != ""},
		{"hostname", req.Hostname != ""}, {"readOnlyRoot", req.ReadOnlyRoot}, {"memory", req.Memory != 0},
		{"cpuShares", req.CPUShares != 0}, {"cpuQuota", req.CPUQuota != 0}, {"cpuPeriod", req.CPUPeriod != 0},
		{"pids", req.Pids != 0}, {"mounts", len(req.Mounts) > 0}, {"capAdd", len(req.CapAdd) > 0},
		{"capDrop", len(req.CapDrop) > 0},
	} {
		if f.set {
			return f.name
		}
	}
	return ""
}
