package securemetrics

import (
	"time"

	"golang.org/x/time/rate"
)

// SetTimeouts sets s's read and idle timeouts, shorter in tests.
func (s *Server) SetTimeouts(read, idle time.Duration) { s.timeouts = timeouts{read: read, idle: idle} }

// SetReviewLimit sets the rate and burst of token reviews of servers made after it, until the
// returned function restores them.
func SetReviewLimit(perSecond float64, burst int) (restore func()) {
	oldRate, oldBurst := reviewRate, reviewBurst
	reviewRate, reviewBurst = rate.Limit(perSecond), burst
	return func() { reviewRate, reviewBurst = oldRate, oldBurst }
}
