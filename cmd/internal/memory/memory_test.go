package memory

import "testing"

func TestShouldReturnMemory(t *testing.T) {
	tests := []struct {
		name                  string
		lastPeriod, sinceLast uint64
		want                  bool
	}{
		{"quiet after a burst", 1 << 20, 200 << 20, true},
		{"still busy", 50 << 20, 200 << 20, false},
		{"quiet, little to give back", 1 << 20, 8 << 20, false},
		{"idle since the last return", 0, 0, false},
		{"at the quiet bound", quietBelow, 200 << 20, false},
		{"at the worth bound", 0, worthAbove, true},
	}
	for _, tc := range tests {
		if got := shouldReturnMemory(tc.lastPeriod, tc.sinceLast); got != tc.want {
			t.Errorf("%s: shouldReturnMemory(%d, %d) = %v, want %v", tc.name, tc.lastPeriod, tc.sinceLast, got, tc.want)
		}
	}
}
