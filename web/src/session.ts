import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export type Role = 'viewer' | 'predictor' | 'deployer' | 'admin';

/** `GET /api/v1/session`. */
export interface Session {
  authRequired: boolean;
  key: { id: string; name: string; role: Role } | null;
  role: Role;
  can: Record<Role, boolean>;
}

export const SessionContext = createContext<Session | null>(null);

/** The signed-in session; views render only inside the sign-in gate, so it is always there. */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside the sign-in gate');
  return s;
}

/** Whether the session's role may press a button that needs `role`. */
export function useCan(role: Role): boolean {
  return useSession().can[role];
}
