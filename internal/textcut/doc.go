// Package textcut cuts text meant for humans (event notes, condition and event messages) to
// the length an API field takes, without splitting a UTF-8 character.
package textcut
