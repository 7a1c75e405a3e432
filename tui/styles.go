package tui

import (
	"charm.land/lipgloss/v2"

	"github.com/mtconsole/mtconsole/replication/writer"
)

// Styles is the console's palette: the 16 ANSI colours only, so it reads
// on the Linux VT and serial consoles, on dark and light backgrounds. A
// colour only ever repeats what a word or symbol already says.
type Styles struct {
	Header   lipgloss.Style
	Title    lipgloss.Style
	Dim      lipgloss.Style
	Selected lipgloss.Style
	OK       lipgloss.Style
	Warn     lipgloss.Style
	Err      lipgloss.Style
	Key      lipgloss.Style
	Bold     lipgloss.Style
}

// NewStyles returns the palette; without colour (NO_COLOR) it keeps only
// bold, faint and reverse.
func NewStyles(color bool) Styles {
	s := Styles{
		Header:   lipgloss.NewStyle().Bold(true),
		Title:    lipgloss.NewStyle().Bold(true),
		Dim:      lipgloss.NewStyle().Faint(true),
		Selected: lipgloss.NewStyle().Reverse(true),
		OK:       lipgloss.NewStyle(),
		Warn:     lipgloss.NewStyle().Bold(true),
		Err:      lipgloss.NewStyle().Bold(true),
		Key:      lipgloss.NewStyle().Bold(true),
		Bold:     lipgloss.NewStyle().Bold(true),
	}
	if color {
		s.Header = s.Header.Foreground(lipgloss.Color("6"))
		s.Title = s.Title.Foreground(lipgloss.Color("4"))
		s.OK = s.OK.Foreground(lipgloss.Color("2"))
		s.Warn = s.Warn.Foreground(lipgloss.Color("3"))
		s.Err = s.Err.Foreground(lipgloss.Color("1"))
		s.Key = s.Key.Foreground(lipgloss.Color("6"))
	}
	return s
}

// healthText is a pair's health as a symbol and words.
func healthText(h string) string {
	switch h {
	case writer.HealthOK:
		return "✓ OK"
	case writer.HealthRPO:
		return "▲ RPO breach"
	case writer.HealthPaused:
		return "‖ Paused"
	case writer.HealthError:
		return "✗ Error"
	case writer.HealthEnded:
		return "■ Ended"
	case "":
		return "? unknown"
	}
	return "? " + h
}

// health styles an already fitted health cell.
func (s Styles) health(h, cell string) string {
	switch h {
	case writer.HealthOK:
		return s.OK.Render(cell)
	case writer.HealthRPO, writer.HealthPaused, writer.HealthEnded:
		return s.Warn.Render(cell)
	case writer.HealthError:
		return s.Err.Render(cell)
	}
	return cell
}
