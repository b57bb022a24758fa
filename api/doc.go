// Package api is troupe's REST API: the contract between the daemon (package
// http) and its clients (package http/client, the troupe command, your
// programs). Every request and response body is a type of this package, and
// this page is the API's reference. It imports only the standard library, so
// a program can speak the API without linking the daemon.
//
// # Transport
//
// The daemon listens on a unix socket, /run/troupe/troupe.sock by default
// (mode 0660: root and the socket's group), and on loopback TCP when asked
// (--listen tcp://127.0.0.1:8888). TCP needs a bearer token (--token-file)
// unless the operator passes --insecure-tcp; with a token every request
// carries "Authorization: Bearer <token>". The API is root-equivalent:
// whoever reaches it controls the machine.
//
// Bodies are JSON (Content-Type: application/json), at most 1 MiB, decoded
// strictly: an unknown field is refused with 400 naming it, and an empty
// body is {}. Container ids, checkpoint names and pool names are 1 to 128
// of [A-Za-z0-9_.-], starting with a letter or digit.
//
// # Errors
//
// Every error answer is an [Error]: a message naming what is wrong and an
// [ErrorCode]. A program switches on the code, not on the message:
//
//	400 invalid_argument      malformed JSON, unknown field, bad id or value
//	401 unauthorized          missing or wrong bearer token
//	404 not_found             unknown container, process, checkpoint, pool
//	                          or image
//	405 method_not_allowed    the path exists, not with this method
//	409 already_exists        the id or name is taken
//	409 failed_precondition   the container's state forbids the request, or
//	                          containers use the image to remove
//	413 too_large             a body over its limit
//	500 internal              the runtime failed; the message says why
//	503 unavailable           a facility the daemon lacks (CRIU, until its
//	                          self-test has passed), or a registry that
//	                          cannot be reached
//	504 deadline_exceeded     CRIU overstayed its deadline and was killed
//
// # Containers
//
//	POST   /containers/{id}                  StartRequest → 201 Container
//	GET    /containers                       → ContainerList
//	GET    /containers/{id}                  → Container
//	PATCH  /containers/{id}                  PatchRequest → Container
//	DELETE /containers/{id}[?force=true]     → 204 (a running one is 409
//	                                           unless force kills it first)
//	GET    /containers/{id}/stats            → Stats
//	GET    /containers/{id}/logs             → text, a line per line the init
//	                                           wrote; queries follow=true,
//	                                           tail=N, since=TIME (RFC 3339,
//	                                           Unix seconds or a duration such
//	                                           as 10m), timestamps=true,
//	                                           streams=true
//	GET    /state                            → State (fast however many
//	                                           containers: no actor is asked)
//
// A container is running, paused or stopped (created while it starts). When
// its init exits, every process in it is gone, its status is stopped with
// an exit status, and it stays listed until deleted.
//
// # Pods
//
// A start with "join" ([Join]) puts the container in the network, IPC and
// UTS namespaces of other containers instead of new ones, as a pod's app
// containers join its sandbox's: {"bundlePath": "...", "join": {"network":
// "sandbox", "ipc": "sandbox", "uts": "sandbox"}}, from a bundle or an
// image. The container joined must be running or paused: 404 if unknown,
// 409 if stopped or still starting; joining itself, "pid", a hostname, or a
// restore is 400. A value that starts with "/" is the path of a namespace
// file instead ({"network": "/run/netns/pod1"}, a bind mount that holds the
// namespace with no process): 400 if not absolute and clean, or not a
// namespace of that type; 404 if missing. A joiner shares the host name of
// the UTS namespace it joined; it keeps running in its namespaces when the
// container it joined stops or is deleted (the kernel keeps a namespace
// while a process is in it), and cannot be checkpointed (409). Its
// [Container] view names what it joined (Join), as the start did.
//
// # Processes
//
//	PUT    /containers/{id}/processes        ExecRequest → 201 Process
//	POST   /containers/{id}/process/{pid}    SignalRequest → 204
//
// The pid is the host pid of one of the container's live processes (404
// otherwise). /containers/{id}/process and /containers/{id}/processes/{pid}
// are accepted too.
//
// # Checkpoints
//
//	POST   /containers/{id}/checkpoint/{name}          CheckpointRequest → 201 Checkpoint
//	GET    /containers/{id}/checkpoint                 → []Checkpoint
//	DELETE /containers/{id}/checkpoint/{name}          → 204
//	GET    /containers/{id}/checkpoint/{name}/archive  → a tar stream
//	PUT    /containers/{id}/checkpoint/{name}/archive  a tar stream → 201 Checkpoint
//
// A start with "checkpoint" restores from one; the archive pair moves a
// checkpoint between daemons (live migration). A checkpoint of a container
// that ran from an image names that image (Checkpoint.Image, a digest, and
// ImageNames): its restore needs that digest in the store (404 naming it
// otherwise), or pulls it by digest from those repositories with "pull":
// "missing" ("never" is the default; "always" is refused, 400: a digest
// cannot have moved).
//
// # Warm pools
//
//	PUT    /pools/{name}                     PoolRequest (a bundle or an image) → 201 or 200 Pool
//	GET    /pools                            → []Pool
//	GET    /pools/{name}                     → Pool
//	DELETE /pools/{name}                     → 204
//
// # Images
//
//	POST   /images                           PullRequest → 200, a stream of
//	                                           PullProgress (NDJSON)
//	GET    /images                           → ImageList
//	GET    /images/{ref}                     → Image
//	GET    /images/{ref}?archive=oci         → 200 application/x-tar: the image
//	                                           as an OCI image layout
//	POST   /images/import                    tar of an OCI image layout →
//	                                           201 ImageList (the images added)
//	DELETE /images/{ref}[?force=true]        → 200 Image (the one removed)
//
// {ref} is a name as pulled, slashes and all
// (/images/127.0.0.1:5000/busybox:1; short names are completed as docker
// does: busybox is index.docker.io/library/busybox:latest), or an image's
// digest (/images/sha256:...). Removing a name removes only that name; the
// image goes with its last name, or at once when removed by digest. An
// image that containers run from is refused, 409 failed_precondition,
// unless force=true (their roots stay until they are deleted).
//
// A pull answers with one PullProgress per line as the layers arrive, the
// last line holding the Image or, for a pull that failed once the stream
// had begun, the Error. A pull that fails before its first line (an unknown
// name, a registry that cannot be reached, no image store: 503) is answered
// with its status like any other request.
//
// A StartRequest with Image set starts the container from an image of the
// store instead of a bundle (BundlePath and Checkpoint must then be left
// out, 400 otherwise); Pull ("never", the default, "missing" or "always")
// says whether the start pulls it first. The other fields of ImageStart
// override what the image says, and are refused (400) in a start from a
// bundle, whose config.json says it all.
//
// # Events
//
//	GET    /events[?since=ID][&container=ID] → a stream of Event
//
// Newline-delimited JSON, or server-sent events with Accept:
// text/event-stream. since=ID first replays what the daemon still holds
// after that id; a subscriber that falls behind gets an EventGap in place of
// what it missed, never a silent hole.
//
// # The daemon
//
//	GET    /healthz                          → Health
//	GET    /version                          → Version
//	GET    /metrics                          → Prometheus text format
package api
