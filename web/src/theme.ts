import { createContext } from 'preact';

export type Theme = 'light' | 'dark';
const KEY = 'warden.theme';

export const ThemeContext = createContext<Theme>('light');

/** The saved choice, else the system's. */
export function initialTheme(): Theme {
  const saved = localStorage.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(t: Theme): void {
  document.documentElement.dataset.theme = t;
  localStorage.setItem(KEY, t);
}
