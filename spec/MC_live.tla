-------------------------------- MODULE MC_live -------------------------------
(*
  Liveness configuration for TLC: 3 sync nodes and 1 store node, one client
  with one request, and no faults, so the behaviors start where faults have
  stopped. MC_live.cfg checks LeaderEventuallyElected and
  PendingWriteCommits under LiveSpec (weak fairness of every protocol
  action).
*)
EXTENDS Cluster

\* @type: Set(Str);
MC_SyncNodes == {"n1", "n2", "n3"}
\* @type: Set(Str);
MC_StoreNodes == {"s1"}
\* @type: Set(Str);
MC_Clients == {"c1"}
MC_MaxTerm == 2
MC_MaxEpoch == 2
MC_MaxLogLen == 1
MC_MaxRequests == 1
MC_MaxCopies == 1
MC_MaxFaults == 0
\* @type: Set(Str);
MC_BUGS == {}
===============================================================================
