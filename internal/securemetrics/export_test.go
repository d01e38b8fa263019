package securemetrics

import "time"

// SetTimeouts sets s's read and idle timeouts, shorter in tests.
func (s *Server) SetTimeouts(read, idle time.Duration) { s.timeouts = timeouts{read: read, idle: idle} }
