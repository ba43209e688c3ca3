----------------------------- MODULE ClusterBase ------------------------------
(*
  Constants, variables and helpers shared by the election (Election.tla) and
  the remote write (RemoteWrite.tla). Cluster.tla composes both with the
  clients, the faults and the invariants.

  The network is a bag of messages: a function from each message in transit
  to its number of copies. Delivery takes any message, so messages can be
  reordered; DropMessage and DuplicateMessage in Cluster.tla lose and copy
  them.
*)
EXTENDS Integers, Sequences, FiniteSets, Cluster_typedefs

-------------------------------------------------------------------------------
\* Constants

CONSTANTS
    \* @type: Set(Str);
    SyncNodes,      \* the sync nodes, which elect a leader
    \* @type: Set(Str);
    StoreNodes,     \* the store nodes, which hold the replicated log
    \* @type: Set(Str);
    Clients,        \* the clients
    \* @type: Int;
    MaxTerm,        \* no election timeout past this term
    \* @type: Int;
    MaxEpoch,       \* no configuration change past this epoch
    \* @type: Int;
    MaxLogLen,      \* the leader accepts no entry past this log length
    \* @type: Int;
    MaxRequests,    \* each client sends request ids 1..MaxRequests
    \* @type: Int;
    MaxCopies,      \* copies of one message in transit; more sends are lost
    \* @type: Int;
    MaxFaults,      \* crashes, drops and duplications in one behavior
    \* @type: Set(Str);
    BUGS            \* deliberate bugs that are switched on, see BugNames

\* The deliberate bugs, each with a configuration that turns it on. The Python
\* code has the same bugs in cluster.core.bugs.Bug.
BugNames == {"DoubleVote", "EarlyAck", "SkipEpochCheck", "NoFence"}

ASSUME BUGS \subseteq BugNames
ASSUME MaxCopies >= 1 /\ MaxFaults >= 0 /\ MaxTerm >= 1

\* TRUE when the deliberate bug `name` is switched on.
\* @type: (Str) => Bool;
Bug(name) == name \in BUGS

-------------------------------------------------------------------------------
\* Sync node variables

\* The latest term each sync node has seen (persisted).
\* @type: Str -> Int;
VARIABLE currentTerm
\* "follower", "precandidate", "candidate" or "leader".
\* @type: Str -> Str;
VARIABLE role
\* The candidate each node voted for in its current term, "" if none (persisted).
\* @type: Str -> Str;
VARIABLE votedFor
\* The voters that granted a candidate its vote in its current term.
\* @type: Str -> Set(Str);
VARIABLE votesGranted
\* The nodes that answered a pre-candidate's PreVote with yes.
\* @type: Str -> Set(Str);
VARIABLE preVotesGranted
\* FALSE while a sync node is crashed.
\* @type: Str -> Bool;
VARIABLE syncUp

electionVars == <<currentTerm, role, votedFor, votesGranted, preVotesGranted,
                  syncUp>>

\* The latest store configuration each sync node has accepted (persisted).
\* @type: Str -> $config;
VARIABLE syncConfig
\* The sync nodes known to store the leader's configuration.
\* @type: Str -> Set(Str);
VARIABLE configAcks
\* The sync nodes that answered the leader since its last check-quorum.
\* @type: Str -> Set(Str);
VARIABLE heardFrom
\* The leader's progress with its configuration: "none" (none proposed),
\* "proposed", "installing" (NewEpoch sent) or "ready" (EpochReady received).
\* @type: Str -> Str;
VARIABLE leaderPhase

configVars == <<syncConfig, configAcks, heardFrom, leaderPhase>>

\* The leader's Lamport clock.
\* @type: Str -> Int;
VARIABLE clock
\* The last request id the leader assigned to each client.
\* @type: Str -> (Str -> Int);
VARIABLE clientTable
\* The leader's view of the log: the primary's log at EpochReady plus the
\* entries it accepted since.
\* @type: Str -> Seq($entry);
VARIABLE leaderLog
\* The commit index the leader learned from WriteAck.
\* @type: Str -> Int;
VARIABLE leaderCommit
\* The output length the leader last read or wrote; only the NoFence bug
\* appends after it instead of after the file's last line.
\* @type: Str -> Int;
VARIABLE outputSeen

leaderVars == <<clock, clientTable, leaderLog, leaderCommit, outputSeen>>

-------------------------------------------------------------------------------
\* Store node variables

\* Each store node's write-ahead log (persisted).
\* @type: Str -> Seq($entry);
VARIABLE storeLog
\* Each store node's commit index (persisted as the backup file).
\* @type: Str -> Int;
VARIABLE storeCommit
\* The epoch each store node has installed (persisted).
\* @type: Str -> Int;
VARIABLE storeEpoch
\* The term of the leader that installed that epoch (persisted).
\* @type: Str -> Int;
VARIABLE storeTerm
\* The configuration of that epoch (persisted).
\* @type: Str -> $config;
VARIABLE storeConfig
\* "active", "down", "rejoining" (restarted, outside the configuration) or
\* "caughtup" (restarted and caught up, ready to be added back).
\* @type: Str -> Str;
VARIABLE storeStatus
\* The sync leader that installed the epoch: the target of EpochReady.
\* @type: Str -> Str;
VARIABLE storeLeader
\* On a primary: the backups that finished epoch sync.
\* @type: Str -> Set(Str);
VARIABLE storeSynced
\* On a primary: the match index each backup reported.
\* @type: Str -> (Str -> Int);
VARIABLE storeMatch

\* On a backup: the (epoch, leader term) whose epoch sync it has applied, so
\* that a duplicate EpochSync does not truncate its log a second time.
\* @type: Str -> $stamp;
VARIABLE storeSyncedTo

storeVars == <<storeLog, storeCommit, storeEpoch, storeTerm, storeConfig,
               storeStatus, storeLeader, storeSynced, storeMatch, storeSyncedTo>>

-------------------------------------------------------------------------------
\* Output file, clients, network

\* The lines of output.txt.
\* @type: Seq($entry);
VARIABLE output
\* The fencing term in output.fence.
\* @type: Int;
VARIABLE fence

outputVars == <<output, fence>>

\* Each client's Lamport clock.
\* @type: Str -> Int;
VARIABLE clientClock
\* The highest request id each client has sent.
\* @type: Str -> Int;
VARIABLE clientSent
\* The timestamp each client gave each request id; a resend reuses it.
\* @type: Str -> (Int -> Int);
VARIABLE clientTs
\* The request ids acknowledged to each client.
\* @type: Str -> Set(Int);
VARIABLE clientAcked

clientVars == <<clientClock, clientSent, clientTs, clientAcked>>

\* The messages in transit, each with its number of copies.
\* @type: $message -> Int;
VARIABLE msgs
\* The faults so far (crashes, drops, duplications).
\* @type: Int;
VARIABLE faults

netVars == <<msgs, faults>>

-------------------------------------------------------------------------------
\* History variables: they record what happened and no action reads them
\* except to update them.

\* The committed log: the longest prefix held by every member of the ready
\* configuration that has not restarted since.
\* @type: Seq($entry);
VARIABLE committed
\* The last configuration whose epoch sync finished on its primary.
\* @type: $config;
VARIABLE readyConfig
\* The highest (epoch, leader term) each store node has ever installed.
\* @type: Str -> $stamp;
VARIABLE storeHigh
\* For each output line: the appender's term and the fence at that moment.
\* @type: Seq($writer);
VARIABLE outputWriters

historyVars == <<committed, readyConfig, storeHigh, outputWriters>>

vars == <<electionVars, configVars, leaderVars, storeVars, outputVars,
          clientVars, netVars, historyVars>>

-------------------------------------------------------------------------------
\* Helpers

\* @type: (Int, Int) => Int;
Max(a, b) == IF a >= b THEN a ELSE b
\* @type: (Int, Int) => Int;
Min(a, b) == IF a <= b THEN a ELSE b

\* TRUE when `s` holds more than half of the sync nodes.
\* @type: (Set(Str)) => Bool;
IsMajority(s) == 2 * Cardinality(s) > Cardinality(SyncNodes)

\* @type: $entry;
NoEntry == [term |-> 0, epoch |-> 0, lamport |-> 0, client |-> "", req |-> 0]

\* @type: $config;
NoConfig == [epoch |-> 0, term |-> 0, primary |-> "", backups |-> {}, joining |-> {}]

\* @type: ($config) => Set(Str);
Members(cfg) == {cfg.primary} \cup cfg.backups

\* TRUE when configuration `a` is at least as recent as `b`, compared by
\* (term, epoch) as the vote rule does.
\* @type: ($config, $config) => Bool;
ConfigAtLeast(a, b) ==
    \/ a.term > b.term
    \/ a.term = b.term /\ a.epoch >= b.epoch

\* @type: ($config, $config) => $config;
NewerConfig(a, b) == IF ConfigAtLeast(a, b) THEN a ELSE b

\* TRUE when (epoch, term) of `a` is at least that of `b`.
\* @type: ($stamp, $stamp) => Bool;
StampAtLeast(a, b) ==
    \/ a.epoch > b.epoch
    \/ a.epoch = b.epoch /\ a.term >= b.term

\* The largest Lamport timestamp in `log`, 0 when it is empty.
\* @type: (Seq($entry)) => Int;
MaxLamport(log) ==
    LET top == {i \in 1..Len(log) :
                  \A j \in 1..Len(log) : log[j].lamport <= log[i].lamport}
    IN IF top = {} THEN 0 ELSE log[CHOOSE i \in top : TRUE].lamport

\* The largest request id of client `c` in `log`, 0 when it has none.
\* @type: (Str, Seq($entry)) => Int;
MaxRequestOf(c, log) ==
    LET own == {i \in 1..Len(log) : log[i].client = c}
        top == {i \in own : \A j \in own : log[j].req <= log[i].req}
    IN IF top = {} THEN 0 ELSE log[CHOOSE i \in top : TRUE].req

-------------------------------------------------------------------------------
\* Network

\* A message of kind `type` with every other field at its default.
\* @type: (Str, Str, Str) => $message;
Msg(type, src, dst) ==
    [type |-> type, src |-> src, dst |-> dst, term |-> 0, epoch |-> 0,
     granted |-> FALSE, cfg |-> NoConfig, index |-> 0, entry |-> NoEntry,
     log |-> <<>>, commit |-> 0, client |-> "", req |-> 0, ts |-> 0]

\* The bag with one more copy of each message in `s`; a message that already
\* has MaxCopies copies in transit gets no more (the network loses it).
\* @type: ($message -> Int, Set($message)) => ($message -> Int);
AddAll(bag, s) ==
    [m \in DOMAIN bag \cup s |->
        IF m \in s
        THEN (IF m \in DOMAIN bag THEN Min(bag[m] + 1, MaxCopies) ELSE 1)
        ELSE bag[m]]

\* The bag with one copy of `m` less.
\* @type: ($message -> Int, $message) => ($message -> Int);
RemoveOne(bag, m) ==
    IF bag[m] > 1
    THEN [bag EXCEPT ![m] = @ - 1]
    ELSE [x \in DOMAIN bag \ {m} |-> bag[x]]

\* Send every message in `s`.
SendAll(s) == msgs' = AddAll(msgs, s)

\* Send `m`.
Send(m) == SendAll({m})

\* Take `m` out of the network without answering.
Discard(m) == msgs' = RemoveOne(msgs, m)

\* Take `m` out of the network and send every message in `s`.
Reply(m, s) == msgs' = AddAll(RemoveOne(msgs, m), s)

-------------------------------------------------------------------------------
\* The committed log

\* The members of `cfg` that count for commitment: those that have not
\* restarted since the configuration was installed. A restarted store node is
\* outside the configuration until a new epoch adds it back.
\* @type: ($config, Str -> Str) => Set(Str);
Holders(cfg, status) == {s \in Members(cfg) : status[s] \in {"active", "down"}}

\* The committed log after a step that changed the store logs, statuses or
\* the ready configuration: it grows to the longest prefix that every holder
\* of `cfg` has, and never shrinks.
\* @type: (Str -> Seq($entry), Str -> Str, $config, Seq($entry)) => Seq($entry);
CommittedAfter(logs, status, cfg, old) ==
    LET holders == Holders(cfg, status)
        ref == CHOOSE h \in holders : TRUE
        common == {k \in 0..Len(logs[ref]) :
                     \A h \in holders : Len(logs[h]) >= k
                        /\ \A i \in 1..k : logs[h][i] = logs[ref][i]}
        longest == CHOOSE k \in common : \A j \in common : j <= k
    IN IF holders = {} \/ longest <= Len(old)
       THEN old
       ELSE SubSeq(logs[ref], 1, longest)

\* Update the committed log; the last conjunct of a store action.
UpdateCommitted ==
    committed' = CommittedAfter(storeLog', storeStatus', readyConfig', committed)
===============================================================================
