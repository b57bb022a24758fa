package agent

import (
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// podEvents records the pod controller's events to the API server, as
// virtual-kubelet's own recorder would, less its
// Provider{Create,Update,Delete}Success events (quietRecorder). Stop ends
// the recording.
func podEvents(kube kubernetes.Interface, nodeName string) (rec record.EventRecorder, stop func()) {
	eb := record.NewBroadcaster()
	eb.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events(corev1.NamespaceAll)})
	r := eb.NewRecorder(scheme.Scheme, corev1.EventSource{Component: path.Join(nodeName, "pod-controller")})
	return quietRecorder{r}, eb.Shutdown
}

// quietRecorder drops the events that say only that a call to the
// provider returned: one more write to the API server per pod (a
// thousand pods' starts make a thousand), telling nothing the pod's status
// does not. Failures, and every other event, pass.
type quietRecorder struct{ record.EventRecorder }

func quiet(eventtype, reason string) bool {
	if eventtype != corev1.EventTypeNormal {
		return false
	}
	switch reason {
	case "ProviderCreateSuccess", "ProviderUpdateSuccess", "ProviderDeleteSuccess":
		return true
	}
	return false
}

func (r quietRecorder) Event(obj runtime.Object, eventtype, reason, message string) {
	if !quiet(eventtype, reason) {
		r.EventRecorder.Event(obj, eventtype, reason, message)
	}
}

func (r quietRecorder) Eventf(obj runtime.Object, eventtype, reason, format string, args ...any) {
	if !quiet(eventtype, reason) {
		r.EventRecorder.Eventf(obj, eventtype, reason, format, args...)
	}
}

func (r quietRecorder) AnnotatedEventf(obj runtime.Object, annotations map[string]string, eventtype, reason, format string, args ...any) {
	if !quiet(eventtype, reason) {
		r.EventRecorder.AnnotatedEventf(obj, annotations, eventtype, reason, format, args...)
	}
}
