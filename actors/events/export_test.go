package events

// QueueLen returns how many events s holds. The event a consumer has just
// received leaves the queue a moment later, when the pump runs again; tests
// that need an exact count of free slots wait for that with it.
func QueueLen(s *Subscription) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.len()
}
