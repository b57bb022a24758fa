package podid

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func TestParse(t *testing.T) {
	const uid = types.UID("0d6ce6a1-5f0e-4a43-9c41-59b1f5b8a0b1")
	tests := []struct {
		id   string
		pod  types.UID
		name string
		ok   bool
	}{
		{"k8s_" + string(uid), uid, "", true},
		{Container(uid, "web"), uid, "web", true},
		{Container(uid, "a-b.c"), uid, "a-b.c", true},
		{"box", "", "", false},
		{"k8s_", "", "", false},
		{"k8s__web", "", "", false},
	}
	for _, tt := range tests {
		pod, name, ok := Parse(tt.id)
		if pod != tt.pod || name != tt.name || ok != tt.ok {
			t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, %v", tt.id, pod, name, ok, tt.pod, tt.name, tt.ok)
		}
	}
}
