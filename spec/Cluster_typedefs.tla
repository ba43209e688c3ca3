-------------------------- MODULE Cluster_typedefs ----------------------------
(*
  Type aliases for the Apalache type checker. TLC reads them as comments.

  Node ids, client ids and message kinds are strings.

  A log entry, stamped by the sync leader that accepted it:
  @typeAlias: entry = {
    term: Int, epoch: Int, lamport: Int, client: Str, req: Int
  };

  A store configuration: the epoch that numbers it, the term of the leader
  that chose it, the primary, the backups, and the backups among them that
  were added back and have not yet synced in an epoch (joining).
  @typeAlias: config = {
    epoch: Int, term: Int, primary: Str, backups: Set(Str), joining: Set(Str)
  };

  Every message kind uses this one record type and fills the fields that it
  does not need with defaults, so TLC and Apalache read it the same way.
  The field `type` names the kind.
  @typeAlias: message = {
    type: Str, src: Str, dst: Str, term: Int, epoch: Int, granted: Bool,
    cfg: $config, index: Int, entry: $entry, log: Seq($entry),
    commit: Int, client: Str, req: Int, ts: Int
  };

  The leader term and the fencing term recorded for each output line:
  @typeAlias: writer = { term: Int, fence: Int };

  The installed (epoch, leader term) of a store node:
  @typeAlias: stamp = { epoch: Int, term: Int };
*)
Cluster_typedefs_aliases == TRUE
===============================================================================
