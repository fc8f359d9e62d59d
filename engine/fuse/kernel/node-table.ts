/**
 * The kernel names files by node ids it got from us in LOOKUP (and CREATE, MKDIR, ...) replies;
 * the filesystem works on paths. This table maps each node id to its parent and name, counts the
 * kernel's references (FORGET drops them) and follows renames and removals, as libfuse's
 * high-level layer does. Node ids are never reused, so a stale id can only miss, never hit
 * another file.
 */
interface Node {
  parent: number;
  name: string;
  lookups: number;
  /** Unlinked or replaced: path operations on it fail with ENOENT; handle operations go on. */
  detached: boolean;
}

export const ROOT_NODE = 1;

export class NodeTable {
  private readonly nodes = new Map<number, Node>([[ROOT_NODE, { parent: ROOT_NODE, name: '', lookups: 1, detached: false }]]);
  private readonly byName = new Map<string, number>();
  private nextId = ROOT_NODE + 1;

  private static key(parent: number, name: string): string {
    return `${parent}/${name}`;
  }

  /** The path of node `id`, or null when the kernel names a node that is gone or detached. */
  path(id: number): string | null {
    if (id === ROOT_NODE) return '/';
    const parts: string[] = [];
    let cur = id;
    while (cur !== ROOT_NODE) {
      const n = this.nodes.get(cur);
      if (!n || n.detached) return null;
      parts.push(n.name);
      cur = n.parent;
    }
    return '/' + parts.reverse().join('/');
  }

  /** The node of (parent, name), made if new; counts one more kernel reference to it. */
  lookup(parent: number, name: string): number {
    const key = NodeTable.key(parent, name);
    let id = this.byName.get(key);
    if (id === undefined) {
      id = this.nextId++;
      this.nodes.set(id, { parent, name, lookups: 0, detached: false });
      this.byName.set(key, id);
    }
    (this.nodes.get(id) as Node).lookups++;
    return id;
  }

  forget(id: number, count: number): void {
    const n = this.nodes.get(id);
    if (!n || id === ROOT_NODE) return;
    n.lookups -= count;
    if (n.lookups > 0) return;
    this.nodes.delete(id);
    const key = NodeTable.key(n.parent, n.name);
    if (this.byName.get(key) === id) this.byName.delete(key);
  }

  /** (parent, name) no longer names its node (unlink, rmdir, or replaced by a rename). */
  remove(parent: number, name: string): void {
    const key = NodeTable.key(parent, name);
    const id = this.byName.get(key);
    if (id === undefined) return;
    this.byName.delete(key);
    const n = this.nodes.get(id);
    if (n) n.detached = true;
  }

  rename(parent: number, name: string, newParent: number, newName: string): void {
    const id = this.byName.get(NodeTable.key(parent, name));
    this.remove(newParent, newName);
    if (id === undefined) return;
    this.byName.delete(NodeTable.key(parent, name));
    const n = this.nodes.get(id) as Node;
    n.parent = newParent;
    n.name = newName;
    this.byName.set(NodeTable.key(newParent, newName), id);
  }

  get size(): number {
    return this.nodes.size;
  }
}
