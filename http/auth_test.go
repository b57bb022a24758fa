package http

import (
	"crypto/rand"
	"encoding/hex"
	nethttp "net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// TestTokenCheckHidesLength: how long the token check takes must not tell
// whether a guess has the token's length. A comparison of the tokens as
// they are returns at once when the lengths differ, and takes time
// proportional to the length when they agree; with a large token the
// difference is plain (milliseconds against nanoseconds).
func TestTokenCheckHidesLength(t *testing.T) {
	secret := make([]byte, 512<<10)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	token := hex.EncodeToString(secret) // 1 MiB
	s := New(Config{Token: token, Logger: quietLogger()})
	wrong := []byte(token)
	wrong[0] ^= 1 // same length, wrong from the first byte
	// Guesses the same size, so that reading them costs the same: one of
	// the token's length, one a byte longer.
	sameLength, otherLength := "Bearer "+string(wrong), "Bearer "+string(wrong[1:])+"xy"
	check := func(header string) time.Duration {
		t.Helper()
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("GET", "/healthz", nil)
		c.Request.Header.Set("Authorization", header)
		t0 := time.Now()
		s.authenticate(c)
		took := time.Since(t0)
		if c.Writer.Status() != nethttp.StatusUnauthorized {
			t.Fatalf("a wrong token answered %d", c.Writer.Status())
		}
		return took
	}
	// The fastest of many, taken in turns, against noise (a loaded machine,
	// the race detector). Compared as they are, the two differ by a factor
	// of thousands; as digests, by nothing but noise.
	same, other := time.Hour, time.Hour
	for range 15 {
		same = min(same, check(sameLength))
		other = min(other, check(otherLength))
	}
	t.Logf("check of a %d-byte token: %v for a guess of its length, %v for one a byte longer", len(token), same, other)
	if other < same/10 || same < other/10 {
		t.Errorf("the check took %v for a guess of the token's length and %v for one a byte longer: it tells the length", same, other)
	}
}
