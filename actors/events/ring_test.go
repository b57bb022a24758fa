package events

import (
	"testing"

	"github.com/troupe-run/troupe/api"
)

func TestRing(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		// pushes and pops in turn: pushes[i] events pushed, then pops[i] popped.
		pushes, pops []int
	}{
		{name: "limit 1", limit: 1, pushes: []int{1, 1, 1}, pops: []int{1, 1, 1}},
		{name: "below initial size", limit: 5, pushes: []int{5, 3, 2}, pops: []int{3, 2, 5}},
		{name: "grows while wrapped", limit: 100, pushes: []int{10, 12, 60, 40}, pops: []int{8, 10, 50, 54}},
		{name: "odd limit", limit: 37, pushes: []int{37, 20, 30}, pops: []int{20, 30, 37}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing(tt.limit)
			var next, want uint64 = 1, 1
			for i := range tt.pushes {
				for range tt.pushes[i] {
					if r.full() {
						t.Fatalf("full at %d events, limit %d", r.len(), tt.limit)
					}
					r.push(api.Event{ID: next})
					next++
				}
				for j := range r.len() {
					if got := r.at(j).ID; got != want+uint64(j) {
						t.Fatalf("at(%d) = %d, want %d", j, got, want+uint64(j))
					}
				}
				for range tt.pops[i] {
					if got := r.pop().ID; got != want {
						t.Fatalf("pop = %d, want %d", got, want)
					}
					want++
				}
				if r.len() != int(next-want) {
					t.Fatalf("len = %d, want %d", r.len(), next-want)
				}
				if len(r.buf) > tt.limit {
					t.Fatalf("storage of %d events, limit %d", len(r.buf), tt.limit)
				}
			}
		})
	}
}
