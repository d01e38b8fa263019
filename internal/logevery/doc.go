// Package logevery lets a log line that a flood could repeat without end be written at most once
// per period: a refusal that anyone who reaches a port can provoke (the metrics server's review
// limit, the kubelet proxy's bound). The lines in between go to a verbose level, and a counter
// of the caller's is the signal to alert on.
package logevery
