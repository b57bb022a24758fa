package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Signal is a Linux signal number. In a request it may also be given by
// name, with or without the SIG prefix, in any case: 15, "15", "SIGTERM"
// and "term" are one signal. It encodes as a number.
type Signal int

// signalNumbers are the Linux signals by name; realtime signals go by
// number.
var signalNumbers = map[string]Signal{
	"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5,
	"SIGABRT": 6, "SIGIOT": 6, "SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9,
	"SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13,
	"SIGALRM": 14, "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17,
	"SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20, "SIGTTIN": 21,
	"SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24, "SIGXFSZ": 25,
	"SIGVTALRM": 26, "SIGPROF": 27, "SIGWINCH": 28, "SIGIO": 29,
	"SIGPOLL": 29, "SIGPWR": 30, "SIGSYS": 31,
}

// UnmarshalJSON implements json.Unmarshaler. A value that is not a signal
// is a *ValueError.
func (s *Signal) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		return s.set(n, string(b))
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return &ValueError{fmt.Sprintf("signal %s: want a number or a name such as \"SIGTERM\"", b)}
	}
	if n, err := strconv.Atoi(name); err == nil {
		return s.set(n, name)
	}
	upper := strings.ToUpper(name)
	if !strings.HasPrefix(upper, "SIG") {
		upper = "SIG" + upper
	}
	num, ok := signalNumbers[upper]
	if !ok {
		return &ValueError{fmt.Sprintf("signal %q: unknown signal name", name)}
	}
	*s = num
	return nil
}

func (s *Signal) set(n int, text string) error {
	if n < 1 || n > 64 {
		return &ValueError{fmt.Sprintf("signal %s: must be between 1 and 64", text)}
	}
	*s = Signal(n)
	return nil
}

// ValueError is a value that is valid JSON but means nothing where it is,
// such as an unknown signal name. Its message names the value.
type ValueError struct{ Msg string }

func (e *ValueError) Error() string { return e.Msg }
