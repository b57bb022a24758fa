package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
)

func TestQuietRecorder(t *testing.T) {
	pod := &corev1.Pod{}
	for _, tc := range []struct {
		eventtype, reason string
		kept              bool
	}{
		{corev1.EventTypeNormal, "ProviderCreateSuccess", false},
		{corev1.EventTypeNormal, "ProviderUpdateSuccess", false},
		{corev1.EventTypeNormal, "ProviderDeleteSuccess", false},
		{corev1.EventTypeWarning, "ProviderCreateFailed", true},
		{corev1.EventTypeWarning, "ProviderCreateSuccess", true},
		{corev1.EventTypeNormal, "Pulled", true},
	} {
		t.Run(tc.reason+"/"+tc.eventtype, func(t *testing.T) {
			fake := record.NewFakeRecorder(3)
			r := quietRecorder{fake}
			r.Event(pod, tc.eventtype, tc.reason, "m")
			r.Eventf(pod, tc.eventtype, tc.reason, "m %d", 1)
			r.AnnotatedEventf(pod, nil, tc.eventtype, tc.reason, "m")
			want := 0
			if tc.kept {
				want = 3
			}
			if got := len(fake.Events); got != want {
				t.Fatalf("%d of 3 events recorded, want %d", got, want)
			}
		})
	}
}
